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

/// An archive written into the package's own directory, a secret and a dependency tree next
/// to the files: none of them ships, so packing again gives the same bytes, and what ships is
/// what `list` says.
#[test]
fn what_does_not_ship_never_changes_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), 0..FILES.len());
    let (first, id) = pack(dir.path());
    let before: Vec<String> = archive::list(dir.path())
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();

    fs::write(dir.path().join("python-package-1.0.0.tar.zst"), &first).unwrap();
    fs::write(dir.path().join(".env"), "API_KEY=secret\n").unwrap();
    fs::write(dir.path().join(".env.local"), "API_KEY=other\n").unwrap();
    fs::create_dir_all(dir.path().join("template/node_modules/left-pad")).unwrap();
    fs::write(
        dir.path().join("template/node_modules/left-pad/index.js"),
        "x",
    )
    .unwrap();
    assert_eq!(pack(dir.path()).1, id, "the archive changed");

    // .peerpackignore adds rules and takes a default back with `!`.
    fs::write(
        dir.path().join(archive::IGNORE_FILE),
        "hooks/\n!.env.example\n",
    )
    .unwrap();
    fs::write(dir.path().join(".env.example"), "API_KEY=\n").unwrap();
    let listed: Vec<String> = archive::list(dir.path())
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert!(listed.contains(&".env.example".to_owned()), "{listed:?}");
    assert!(
        listed.contains(&archive::IGNORE_FILE.to_owned()),
        "{listed:?}"
    );
    assert!(!listed.iter().any(|p| p.starts_with("hooks")), "{listed:?}");
    assert!(
        !listed
            .iter()
            .any(|p| p.contains("node_modules") || p == ".env"),
        "{listed:?}"
    );
    let (bytes, _) = pack(dir.path());
    let mut names = Vec::new();
    let mut tar = tar::Archive::new(zstd::stream::Decoder::new(&bytes[..]).unwrap());
    for entry in tar.entries().unwrap() {
        names.push(
            entry
                .unwrap()
                .path()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    assert_eq!(names, listed, "list shows exactly what the archive holds");
    assert!(before.iter().any(|p| p.starts_with("hooks")));
}

/// A `.peerpackignore` that does not parse is refused, naming the file.
#[test]
fn a_bad_ignore_file_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), 0..FILES.len());
    fs::write(dir.path().join(archive::IGNORE_FILE), "{unclosed\n").unwrap();
    let e = archive::pack(dir.path()).unwrap_err().to_string();
    assert!(e.contains(archive::IGNORE_FILE), "{e}");
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

// ---- extension entries the tar parser would read whole into memory ----

const BLOCK: usize = 512;

/// One raw GNU header block: type `kind`, `path` in the name field, `size` in the size field.
fn header_block(kind: u8, path: &str, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    let old = h.as_old_mut();
    old.name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_mode(0o644);
    h.set_size(size);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// A tar stream, written straight into a zstd encoder so that large entries never sit in
/// memory: each part is a header, then `data` repeated `times`, then padding to a block.
struct Stream {
    out: zstd::stream::Encoder<'static, Vec<u8>>,
}

impl Stream {
    fn new() -> Self {
        Self {
            out: zstd::stream::Encoder::new(Vec::new(), 3).unwrap(),
        }
    }

    /// An entry whose header says `size` bytes, followed by `data` repeated `times` (which
    /// need not add up to `size`), padded to a whole block.
    fn entry(mut self, kind: u8, path: &str, size: u64, data: &[u8], times: usize) -> Self {
        use std::io::Write;
        self.out.write_all(&header_block(kind, path, size)).unwrap();
        for _ in 0..times {
            self.out.write_all(data).unwrap();
        }
        let written = data.len() * times;
        let pad = (BLOCK - written % BLOCK) % BLOCK;
        self.out.write_all(&vec![0u8; pad]).unwrap();
        self
    }

    fn file(self, path: &str, data: &[u8]) -> Self {
        self.entry(b'0', path, data.len() as u64, data, 1)
    }

    fn finish(mut self) -> Vec<u8> {
        use std::io::Write;
        self.out.write_all(&[0u8; 2 * BLOCK]).unwrap();
        self.out.finish().unwrap()
    }
}

/// One PAX record, `LEN key=value\n`, where LEN counts the whole record.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}").len() + body.len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

/// Extracts `bytes` into a new directory and checks it is refused within a second, leaving
/// nothing behind.
fn refused_quickly(bytes: &[u8]) -> ExtractError {
    let started = std::time::Instant::now();
    let err = refused_default(bytes);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "refusing took {:?}: the entry was read",
        started.elapsed()
    );
    err
}

#[test]
fn a_huge_gnu_long_name_is_refused_before_it_is_read() {
    // 256 MiB of 'a' as one long name: a few KiB compressed, 256 MiB in memory if read.
    let size: u64 = 256 << 20;
    let chunk = vec![b'a'; 1 << 20];
    let bytes = Stream::new()
        .entry(b'L', "././@LongLink", size, &chunk, 256)
        .file("x", b"1")
        .finish();
    assert!(bytes.len() < 256 * 1024, "compressed to {}", bytes.len());
    let err = refused_quickly(&bytes);
    match &err {
        ExtractError::ExtensionTooLarge { kind, size: s, max } => {
            assert!(kind.contains("'L'"), "{kind}");
            assert_eq!((*s, *max), (size, 4096));
        }
        other => panic!("expected ExtensionTooLarge, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("type 'L'") && text.contains("268435456"),
        "{text}"
    );

    // The same for a long link name, just past the limit; and exactly at the limit the entry
    // is read, and its path refused as too long.
    let err = refused_quickly(
        &Stream::new()
            .entry(b'K', "././@LongLink", 4097, &[b'a'; 4097], 1)
            .entry(b'2', "l", 0, b"", 0)
            .finish(),
    );
    assert!(
        matches!(err, ExtractError::ExtensionTooLarge { kind, size: 4097, max: 4096 } if kind.contains("'K'")),
        "{err}"
    );
    let mut name = vec![b'a'; 4095];
    name.push(0);
    let err = refused_default(
        &Stream::new()
            .entry(b'L', "././@LongLink", 4096, &name, 1)
            .file("x", b"1")
            .finish(),
    );
    assert!(matches!(err, ExtractError::BadPath(_)), "{err}");
}

#[test]
fn a_huge_pax_header_is_refused_before_it_is_read() {
    let size: u64 = 1 << 20;
    let record = pax_record("comment", &"a".repeat(size as usize - 17));
    assert_eq!(record.len() as u64, size);
    let bytes = Stream::new()
        .entry(b'x', "./PaxHeaders/x", size, &record, 1)
        .file("x", b"1")
        .finish();
    let err = refused_quickly(&bytes);
    assert!(
        matches!(err, ExtractError::ExtensionTooLarge { kind, size: s, max: 65536 } if kind.contains("'x'") && s == size),
        "{err}"
    );
    assert!(err.to_string().contains("1048576"), "{err}");

    // A global header past the limit too.
    let err = refused_quickly(
        &Stream::new()
            .entry(b'g', "./PaxHeaders/g", 65537, &[b'a'; 65537], 1)
            .file("x", b"1")
            .finish(),
    );
    assert!(
        matches!(err, ExtractError::ExtensionTooLarge { kind, size: 65537, max: 65536 } if kind.contains("'g'")),
        "{err}"
    );
}

#[test]
fn a_sparse_file_is_refused() {
    let bytes = Stream::new()
        .file("ok.txt", b"fine")
        .entry(b'S', "holes.bin", 512, &[7u8; 512], 1)
        .finish();
    let err = refused_quickly(&bytes);
    match &err {
        ExtractError::Sparse { path, size } => {
            assert_eq!((path.as_str(), *size), ("holes.bin", 512))
        }
        other => panic!("expected Sparse, got {other}"),
    }
    assert!(err.to_string().contains("type 'S'"), "{err}");
}

#[test]
fn long_names_and_small_pax_headers_still_extract() {
    // What our packer writes for a path of about 900 bytes: a GNU long-name entry, and a
    // long-link entry for a symlink pointing at it.
    let dir = tempfile::tempdir().unwrap();
    write_package(dir.path(), 0..FILES.len());
    let segment = "d".repeat(109);
    let deep: Vec<&str> = std::iter::repeat_n(segment.as_str(), 8).collect();
    let deep = format!("template/{}/file-with-a-long-name.txt", deep.join("/"));
    assert!((850..1024).contains(&deep.len()), "{}", deep.len());
    fs::create_dir_all(dir.path().join(&deep).parent().unwrap()).unwrap();
    fs::write(dir.path().join(&deep), "deep\n").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&deep, dir.path().join("to-deep")).unwrap();
    let (bytes, _) = pack(dir.path());
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("pkg");
    archive::extract(&bytes[..], &target, &ExtractLimits::default()).unwrap();
    assert_eq!(files_under(&target), files_under(dir.path()));
    #[cfg(unix)]
    assert_eq!(fs::read(target.join("to-deep")).unwrap(), b"deep\n");

    // A small PAX header (path and an attribute) and a global header, as other packers write.
    let mut pax = pax_record("path", "from-pax/name.txt");
    pax.extend(pax_record("comment", "made elsewhere"));
    let bytes = Stream::new()
        .entry(b'g', "./PaxHeaders/g", 0, b"", 0)
        .entry(b'x', "./PaxHeaders/x", pax.len() as u64, &pax, 1)
        .file("short-name.txt", b"pax body")
        .file("plain.txt", b"plain")
        .finish();
    let target = out.path().join("pax");
    archive::extract(&bytes[..], &target, &ExtractLimits::default()).unwrap();
    assert_eq!(
        fs::read(target.join("from-pax/name.txt")).unwrap(),
        b"pax body"
    );
    assert_eq!(fs::read(target.join("plain.txt")).unwrap(), b"plain");
    assert!(!target.join("short-name.txt").exists());
}

/// 512 bytes that look like a GNU long-name header claiming 1 GiB.
fn fake_huge_long_name() -> Vec<u8> {
    header_block(b'L', "././@LongLink", 1 << 30)
}

#[test]
fn a_pax_size_moves_the_next_header_for_the_guard_as_for_tar() {
    // The PAX size (1024) overrides the file header's (0): the two blocks after the header are
    // the file's data, though they look like a huge long-name header. Reading them as a header
    // would refuse the archive.
    let mut data = fake_huge_long_name();
    data.extend(fake_huge_long_name());
    let pax = pax_record("size", "1024");
    let bytes = Stream::new()
        .entry(b'x', "./PaxHeaders/f", pax.len() as u64, &pax, 1)
        .entry(b'0', "f", 0, &data, 1)
        .file("after.txt", b"after")
        .finish();
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("pkg");
    archive::extract(&bytes[..], &target, &ExtractLimits::default()).unwrap();
    assert_eq!(fs::read(target.join("f")).unwrap(), data);
    assert_eq!(fs::read(target.join("after.txt")).unwrap(), b"after");

    // The other way round: the PAX size (0) says the block after the header, which its header
    // calls data, is the next header. The guard must look at it, and refuse.
    let pax = pax_record("size", "0");
    let bytes = Stream::new()
        .entry(b'x', "./PaxHeaders/f", pax.len() as u64, &pax, 1)
        .entry(b'0', "f", 512, &fake_huge_long_name(), 1)
        .file("after.txt", b"after")
        .finish();
    let err = refused_quickly(&bytes);
    assert!(
        matches!(err, ExtractError::ExtensionTooLarge { size, .. } if size == 1 << 30),
        "{err}"
    );

    // A PAX size carries over a long-name entry to the file after it.
    let mut long = "n".repeat(150).into_bytes();
    long.push(0);
    let pax = pax_record("size", "1024");
    let bytes = Stream::new()
        .entry(b'x', "./PaxHeaders/f", pax.len() as u64, &pax, 1)
        .entry(b'L', "././@LongLink", long.len() as u64, &long, 1)
        .entry(b'0', "f", 0, &data, 1)
        .file("after.txt", b"after")
        .finish();
    let target = out.path().join("pkg2");
    archive::extract(&bytes[..], &target, &ExtractLimits::default()).unwrap();
    assert_eq!(fs::read(target.join("n".repeat(150))).unwrap(), data);

    // A global header in between uses the PAX header up (tar 0.4 gives it to the global
    // header): the file's own size counts, and the guard must not skip its neighbour.
    let mut fake = vec![b'z'; 512];
    fake.extend(fake_huge_long_name());
    let bytes = Stream::new()
        .entry(b'x', "./PaxHeaders/f", pax.len() as u64, &pax, 1)
        .entry(b'g', "./PaxHeaders/g", 0, b"", 0)
        .entry(b'0', "f", 0, b"", 0)
        .file("g.txt", &fake)
        .finish();
    let target = out.path().join("pkg3");
    archive::extract(&bytes[..], &target, &ExtractLimits::default()).unwrap();
    assert_eq!(fs::read(target.join("f")).unwrap(), b"");
    assert_eq!(fs::read(target.join("g.txt")).unwrap(), fake);

    // A malformed record before `size` makes tar ignore the PAX size; so does the guard.
    let mut pax = b"9 bad\n".to_vec();
    pax.extend(pax_record("size", "1024"));
    let bytes = Stream::new()
        .entry(b'x', "./PaxHeaders/f", pax.len() as u64, &pax, 1)
        .entry(b'0', "f", 0, b"", 0)
        .file("g.txt", &fake)
        .finish();
    let target = out.path().join("pkg4");
    archive::extract(&bytes[..], &target, &ExtractLimits::default()).unwrap();
    assert_eq!(fs::read(target.join("g.txt")).unwrap(), fake);
}

#[test]
fn the_install_marker_is_not_packed() {
    // A package published from a tree peerpack installed has the content it was installed with.
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write_package(a.path(), 0..FILES.len());
    write_package(b.path(), 0..FILES.len());
    fs::write(b.path().join(archive::INSTALL_MARKER), "name = \"x\"\n").unwrap();
    assert_eq!(pack(a.path()).1, pack(b.path()).1);
}
