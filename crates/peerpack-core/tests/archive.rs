//! The archive format: determinism, round trips and every unsafe-archive case.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use peerpack_core::ContentId;
use peerpack_core::archive::{self, ExtractError, ExtractLimits};

const MANIFEST: &str = r#"[package]
name = "python-package"
version = "1.0.0"
description = "A Python package template with pyproject, tests and CI"
license = "MIT"
authors = ["Lin <lin@example.org>"]
tags = ["python"]
readme = "README.md"
"#;

/// Files of a small package, in the order given.
const FILES: &[(&str, &str)] = &[
    ("peerpack.toml", MANIFEST),
    ("README.md", "# python-package\n"),
    (
        "template/pyproject.toml",
        "[project]\nname = \"{{name}}\"\n",
    ),
    (
        "template/src/{{name}}/__init__.py",
        "__version__ = \"0.1.0\"\n",
    ),
    (
        "template/tests/test_basic.py",
        "def test_ok():\n    assert True\n",
    ),
    ("hooks/post-gen.sh", "#!/bin/sh\necho done\n"),
];

fn write_package(root: &Path, order: impl Iterator<Item = usize>) {
    for i in order {
        let (rel, body) = FILES[i];
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, body).unwrap();
    }
    set_exec(&root.join("hooks/post-gen.sh"), 0o755);
    fs::create_dir_all(root.join("template/empty-dir")).unwrap();
}

#[cfg(unix)]
fn set_exec(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn pack(dir: &Path) -> (Vec<u8>, ContentId) {
    let (bytes, summary) = archive::pack(dir).unwrap();
    assert_eq!(summary.content_id, ContentId::of(&bytes));
    assert_eq!(summary.size, bytes.len() as u64);
    (bytes, summary.content_id)
}

#[test]
fn packing_twice_gives_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), 0..FILES.len());
    assert_eq!(pack(dir.path()), pack(dir.path()));
}

#[test]
fn archive_ignores_order_mtimes_and_permissions() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write_package(a.path(), 0..FILES.len());
    write_package(b.path(), (0..FILES.len()).rev());
    // Other mtimes and other non-executable permission bits in the copy.
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    for (rel, _) in FILES {
        let f = fs::File::options()
            .write(true)
            .open(b.path().join(rel))
            .unwrap();
        f.set_modified(old).unwrap();
    }
    set_exec(&b.path().join("README.md"), 0o600);
    // Other owners too, where this process may change them (it may when run as root).
    #[cfg(unix)]
    for (rel, _) in FILES {
        let _ = std::os::unix::fs::chown(b.path().join(rel), Some(4242), Some(4242));
    }
    set_exec(&b.path().join("template/pyproject.toml"), 0o664);
    // Ignored VCS metadata does not count either.
    fs::create_dir_all(b.path().join(".git")).unwrap();
    fs::write(b.path().join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    assert_eq!(pack(a.path()), pack(b.path()));

    // The executable bit does count: it is part of what gets installed.
    set_exec(&b.path().join("hooks/post-gen.sh"), 0o644);
    assert_ne!(pack(a.path()).1, pack(b.path()).1);
}

fn files_under(root: &Path) -> Vec<(PathBuf, Vec<u8>, bool)> {
    let mut out = Vec::new();
    for e in walkdir(root) {
        let rel = e.strip_prefix(root).unwrap().to_owned();
        let meta = fs::symlink_metadata(&e).unwrap();
        if meta.is_file() {
            #[cfg(unix)]
            let exec = {
                use std::os::unix::fs::PermissionsExt;
                meta.permissions().mode() & 0o111 != 0
            };
            out.push((rel, fs::read(&e).unwrap(), exec));
        } else if meta.is_dir() {
            out.push((rel, Vec::new(), false));
        }
    }
    out.sort();
    out
}

fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn pack_then_extract_gives_identical_files() {
    let src = tempfile::tempdir().unwrap();
    write_package(src.path(), 0..FILES.len());
    #[cfg(unix)]
    std::os::unix::fs::symlink("template/pyproject.toml", src.path().join("pyproject-link"))
        .unwrap();
    let (bytes, _) = pack(src.path());
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("python-package");
    let summary = archive::extract(&bytes[..], &target, &ExtractLimits::default()).unwrap();
    assert_eq!(summary.files, FILES.len() as u64);
    assert_eq!(files_under(src.path()), files_under(&target));
    #[cfg(unix)]
    assert_eq!(
        fs::read_link(target.join("pyproject-link")).unwrap(),
        Path::new("template/pyproject.toml")
    );
}

#[test]
fn pack_refuses_links_outside_and_missing_readme() {
    let src = tempfile::tempdir().unwrap();
    write_package(src.path(), 0..FILES.len());
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("../../etc/passwd", src.path().join("template/evil")).unwrap();
        let err = archive::pack(src.path()).unwrap_err();
        assert!(
            err.to_string().contains("points outside the package"),
            "{err}"
        );
        fs::remove_file(src.path().join("template/evil")).unwrap();
    }
    fs::remove_file(src.path().join("README.md")).unwrap();
    let err = archive::pack(src.path()).unwrap_err();
    assert!(err.to_string().contains("README.md"), "{err}");
}

// ---- hostile archives, built by hand ----

enum Raw<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    Special(&'a str, tar::EntryType),
}

/// Writes headers byte by byte, bypassing the tar crate's own path checks, then compresses.
fn hostile(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let (path, kind, link, data): (&str, tar::EntryType, &str, &[u8]) = match e {
            Raw::File(p, d) => (p, tar::EntryType::Regular, "", d),
            Raw::Dir(p) => (p, tar::EntryType::Directory, "", b""),
            Raw::Symlink(p, t) => (p, tar::EntryType::Symlink, t, b""),
            Raw::HardLink(p, t) => (p, tar::EntryType::Link, t, b""),
            Raw::Special(p, k) => (p, *k, "", b""),
        };
        let old = h.as_old_mut();
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        tar.append(&h, data).unwrap();
    }
    zstd::encode_all(&tar.into_inner().unwrap()[..], 3).unwrap()
}

/// Extracts into `base/pkg` and checks that nothing was left anywhere under `base`.
fn refused(bytes: &[u8], limits: ExtractLimits) -> ExtractError {
    let base = tempfile::tempdir().unwrap();
    let target = base.path().join("pkg");
    let err = archive::extract(bytes, &target, &limits).unwrap_err();
    let left: Vec<_> = fs::read_dir(base.path()).unwrap().collect();
    assert!(left.is_empty(), "files left behind after {err}: {left:?}");
    err
}

fn refused_default(bytes: &[u8]) -> ExtractError {
    refused(bytes, ExtractLimits::default())
}

#[test]
fn absolute_path_is_refused() {
    let err = refused_default(&hostile(&[
        Raw::File("ok.txt", b"x"),
        Raw::File("/tmp/peerpack-evil", b"x"),
    ]));
    assert!(matches!(err, ExtractError::AbsolutePath(_)), "{err}");
    assert!(!Path::new("/tmp/peerpack-evil").exists());
}

#[test]
fn parent_components_are_refused() {
    let err = refused_default(&hostile(&[Raw::File("a/../../evil", b"x")]));
    assert!(matches!(err, ExtractError::ParentComponent(_)), "{err}");
    let err = refused_default(&hostile(&[Raw::File("../evil", b"x")]));
    assert!(matches!(err, ExtractError::ParentComponent(_)), "{err}");
}

#[test]
fn symlink_pointing_outside_is_refused() {
    let err = refused_default(&hostile(&[Raw::Symlink("link", "../../etc")]));
    assert!(matches!(err, ExtractError::LinkOutside { .. }), "{err}");
    let err = refused_default(&hostile(&[Raw::Symlink("link", "/etc/passwd")]));
    assert!(matches!(err, ExtractError::LinkOutside { .. }), "{err}");
}

#[test]
fn symlink_then_write_through_it_is_refused() {
    // Classic two-step escape: a link to a directory, then a file "inside" the link.
    let err = refused_default(&hostile(&[
        Raw::Dir("sub"),
        Raw::Symlink("sub/up", ".."),
        Raw::Symlink("sub/up/out", "../.."),
    ]));
    assert!(
        matches!(
            err,
            ExtractError::LinkOutside { .. } | ExtractError::BeneathSymlink(_)
        ),
        "{err}"
    );
    let err = refused_default(&hostile(&[
        Raw::Dir("d"),
        Raw::Symlink("l", "d"),
        Raw::Symlink("l/x", "../y"),
    ]));
    assert!(
        matches!(
            err,
            ExtractError::BeneathSymlink(_) | ExtractError::LinkOutside { .. }
        ),
        "{err}"
    );
}

#[test]
fn hard_link_pointing_outside_is_refused() {
    let err = refused_default(&hostile(&[Raw::HardLink("passwd", "/etc/passwd")]));
    assert!(matches!(err, ExtractError::LinkOutside { .. }), "{err}");
    let err = refused_default(&hostile(&[Raw::HardLink("x", "../outside")]));
    assert!(matches!(err, ExtractError::LinkOutside { .. }), "{err}");
}

#[test]
fn hard_link_inside_is_copied() {
    let bytes = hostile(&[
        Raw::File("a.txt", b"hello"),
        Raw::HardLink("b.txt", "a.txt"),
    ]);
    let base = tempfile::tempdir().unwrap();
    let target = base.path().join("pkg");
    archive::extract(&bytes[..], &target, &ExtractLimits::default()).unwrap();
    assert_eq!(fs::read(target.join("b.txt")).unwrap(), b"hello");
}

#[test]
fn device_files_are_refused() {
    for kind in [
        tar::EntryType::Char,
        tar::EntryType::Block,
        tar::EntryType::Fifo,
    ] {
        let err = refused_default(&hostile(&[
            Raw::File("ok", b"1"),
            Raw::Special("dev", kind),
        ]));
        assert!(matches!(err, ExtractError::DeviceFile { .. }), "{err}");
    }
}

#[test]
fn archive_expanding_past_the_limit_is_refused() {
    let big = vec![0u8; 64 * 1024];
    let bytes = hostile(&[Raw::File("a", &big), Raw::File("b", &big)]);
    // A 128 KiB expansion from a compressed stream of a few hundred bytes.
    assert!(bytes.len() < 1024);
    let limits = ExtractLimits {
        max_unpacked_bytes: 100 * 1024,
        ..Default::default()
    };
    let err = refused(&bytes, limits);
    assert!(matches!(err, ExtractError::TooLarge(_)), "{err}");
    let limits = ExtractLimits {
        max_entries: 1,
        ..Default::default()
    };
    assert!(matches!(
        refused(&bytes, limits),
        ExtractError::TooManyEntries(1)
    ));
}

#[test]
fn duplicate_entries_and_corrupt_streams_are_refused() {
    let err = refused_default(&hostile(&[Raw::File("a", b"1"), Raw::File("a", b"2")]));
    assert!(matches!(err, ExtractError::Duplicate(_)), "{err}");
    let err = refused_default(b"definitely not zstd");
    assert!(matches!(err, ExtractError::Corrupt(_)), "{err}");
    let good = hostile(&[Raw::File("a", &[7u8; 10_000])]);
    let err = refused_default(&good[..good.len() / 2]);
    assert!(matches!(err, ExtractError::Corrupt(_)), "{err}");
}

#[test]
fn target_must_be_new_or_empty() {
    let base = tempfile::tempdir().unwrap();
    fs::write(base.path().join("existing"), "keep me").unwrap();
    let bytes = hostile(&[Raw::File("a", b"1")]);
    let err = archive::extract(&bytes[..], base.path(), &ExtractLimits::default()).unwrap_err();
    assert!(matches!(err, ExtractError::TargetNotEmpty(_)));
    assert_eq!(
        fs::read_to_string(base.path().join("existing")).unwrap(),
        "keep me"
    );
}

#[test]
fn a_failed_extraction_into_an_empty_dir_leaves_it_empty() {
    let base = tempfile::tempdir().unwrap();
    let bytes = hostile(&[Raw::File("a", b"1"), Raw::File("b/../../x", b"2")]);
    archive::extract(&bytes[..], base.path(), &ExtractLimits::default()).unwrap_err();
    assert_eq!(fs::read_dir(base.path()).unwrap().count(), 0);
}
