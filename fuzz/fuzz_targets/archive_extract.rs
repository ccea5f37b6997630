//! `archive::extract` on arbitrary bytes, with small limits, into a fresh directory.
//!
//! The first byte picks how the rest is used: bit 0 clear, the rest is the archive as is
//! (zstd-compressed tar); bit 0 set, the rest is a tar stream that is compressed here first, so
//! that the fuzzer's mutations reach the tar parser and the header guard instead of dying in
//! the decompressor. Bit 1 set, the target directory exists (empty) before extraction; clear,
//! extraction creates it.
//!
//! Whatever the result: nothing is written outside the target. On success every file and
//! symlink is inside it (every symlink resolves inside), file modes are only 0644 or 0755, and
//! the summary matches what is on disk; on error the target is empty or gone.

#![no_main]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use peerpack_core::archive::{ExtractLimits, ExtractSummary, extract};

const LIMITS: ExtractLimits = ExtractLimits {
    max_unpacked_bytes: 256 * 1024,
    max_entries: 64,
};

/// The names in `dir`.
fn names(dir: &Path) -> Vec<String> {
    match fs::read_dir(dir) {
        Ok(it) => it
            .map(|e| {
                e.expect("readable entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// What is on disk under `dir`, counted the way `ExtractSummary` counts, and checked.
fn walk(dir: &Path, root: &Path, found: &mut ExtractSummary) {
    for entry in fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("readable entry").path();
        let meta = fs::symlink_metadata(&path).expect("lstat");
        let ft = meta.file_type();
        if ft.is_symlink() {
            let resolved = fs::canonicalize(&path)
                .unwrap_or_else(|e| panic!("symlink {path:?} left dangling: {e}"));
            assert!(
                resolved.starts_with(root),
                "symlink {path:?} resolves to {resolved:?}, outside {root:?}"
            );
            found.symlinks += 1;
        } else if ft.is_dir() {
            walk(&path, root, found);
        } else if ft.is_file() {
            let mode = meta.permissions().mode() & 0o7777;
            assert!(mode == 0o644 || mode == 0o755, "{path:?} has mode {mode:o}");
            found.files += 1;
            found.bytes += meta.len();
        } else {
            panic!("{path:?} is neither a file, a directory nor a symlink");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let compressed;
    let archive: &[u8] = if mode & 1 == 1 {
        compressed = zstd::bulk::compress(rest, 1).expect("zstd compresses");
        &compressed
    } else {
        rest
    };

    // sandbox/parent/target: a path that climbs out of the target by one or two levels lands
    // in the sandbox, where it shows.
    let sandbox = tempfile::tempdir().expect("temporary directory");
    let parent = sandbox.path().join("parent");
    fs::create_dir(&parent).expect("create parent");
    let target = parent.join("target");
    if mode & 2 == 2 {
        fs::create_dir(&target).expect("create target");
    }

    let result = extract(archive, &target, &LIMITS);

    assert_eq!(
        names(sandbox.path()),
        ["parent"],
        "written beside the target's parent"
    );
    let beside = names(&parent);
    assert!(
        beside.is_empty() || beside == ["target"],
        "written beside the target: {beside:?}"
    );
    match result {
        Ok(summary) => {
            let root = fs::canonicalize(&target).expect("the target exists");
            let mut found = ExtractSummary::default();
            walk(&target, &root, &mut found);
            assert_eq!(found.files, summary.files, "{summary:?}");
            assert_eq!(found.symlinks, summary.symlinks, "{summary:?}");
            assert_eq!(found.bytes, summary.bytes, "{summary:?}");
            assert!(summary.bytes <= LIMITS.max_unpacked_bytes);
            assert!(summary.files + summary.dirs + summary.symlinks <= LIMITS.max_entries);
        }
        Err(e) => {
            let left = names(&target);
            assert!(left.is_empty(), "{e}: left behind {left:?}");
            if mode & 2 == 0 {
                assert!(
                    fs::symlink_metadata(&target).is_err(),
                    "{e}: the target it created is still there"
                );
            }
        }
    }
});
