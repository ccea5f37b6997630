//! Writing files so that a crash never leaves half of one: [`atomic_write`], [`sync_dir`].

use std::io::{self, Write};
use std::path::Path;

/// Replace `path` with `bytes`, atomically and durably: write a temporary file in the same
/// directory (mode 0600 on Unix), flush it to disk, rename it over `path`, then flush the
/// directory so the rename itself survives a power cut. A reader sees the old file or the new
/// one, never a part.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    atomic_write_via(dir, path, bytes)
}

/// [`atomic_write`] with the temporary file in `temp_dir`, which must be on the same file
/// system as `path`: for stores that sweep a directory of their own for what a crash left.
pub fn atomic_write_via(temp_dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    // NamedTempFile creates the file with mode 0600.
    let mut tmp = tempfile::NamedTempFile::new_in(temp_dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}

/// Replace `path` with `bytes` atomically but not durably: as [`atomic_write_via`] without the
/// two flushes. A killed process leaves the old file or the new one; a power cut may leave
/// either, or an empty or missing file. Only for caches that their reader checks and can
/// rebuild (a blob's outline), where the flushes would cost every download two disk
/// round trips for nothing.
pub fn replace_cache_via(temp_dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(temp_dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Flush a directory's entries (a rename or a new file in it) to disk. A no-op where
/// directories cannot be opened as files.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        atomic_write(&path, b"a long first version").unwrap();
        atomic_write(&path, b"short").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"short");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f.json")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn atomic_write_into_a_missing_directory_fails_and_names_nothing_half_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("f");
        assert!(atomic_write(&path, b"x").is_err());
        assert!(!path.exists());
    }
}
