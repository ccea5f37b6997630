//! Reading what an archive holds without unpacking it: its entries and its README, for a page
//! that shows a package. The archive is read as a stream, under the same limits and header
//! guards as [`extract`](super::extract), and nothing is written anywhere.

use std::cell::RefCell;
use std::io::{self, Read};
use std::rc::Rc;

use super::extract::{HeaderGuard, clean_path};
use super::{ExtractError, ExtractLimits, ListedKind};

/// The names a README may have at the package's root, in the order they are preferred
/// (compared without regard to case).
pub const README_NAMES: &[&str] = &["README.md", "README.markdown", "README", "README.txt"];

/// One entry of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its path inside the package, `/`-separated.
    pub path: String,
    /// What it is (a hard link is listed as a file).
    pub kind: ListedKind,
    /// Bytes of a file (0 for the rest, and for a hard link).
    pub size: u64,
}

/// A README read from an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readme {
    /// Its path inside the package.
    pub path: String,
    /// Its text (invalid UTF-8 replaced), at most the limit given to [`contents`].
    pub text: String,
    /// Whether the file was longer than that.
    pub truncated: bool,
}

/// What [`contents`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    /// The first entries, in archive order.
    pub entries: Vec<Entry>,
    /// How many entries the archive has in all.
    pub total_entries: u64,
    /// Bytes of all its files.
    pub total_bytes: u64,
    /// The README at the package's root, if it has one (see [`README_NAMES`]).
    pub readme: Option<Readme>,
}

/// The entries and README of a zstd-compressed tar archive, read as a stream. The README is
/// the file at `readme` (the manifest's `package.readme`) when given and present, else the
/// first of [`README_NAMES`] at the root. At most `max_listed` entries are kept (all are
/// counted) and at most `max_readme` bytes of the README. Paths, the entry count, the files'
/// total size and tar headers are checked as [`extract`](super::extract) checks them, with
/// the same errors. What only matters when writing is not checked (nothing is written):
/// duplicate paths, and where links point; a hard link is listed as a file of size 0.
pub fn contents<R: Read>(
    archive: R,
    limits: &ExtractLimits,
    readme: Option<&str>,
    max_listed: usize,
    max_readme: usize,
) -> Result<Contents, ExtractError> {
    let decoder =
        zstd::stream::Decoder::new(archive).map_err(|e| ExtractError::Corrupt(e.to_string()))?;
    let stream_cap = limits
        .max_unpacked_bytes
        .saturating_add(limits.max_entries.saturating_mul(4096))
        .saturating_add(1 << 20);
    let refusal = Rc::new(RefCell::new(None));
    let mut tar = tar::Archive::new(HeaderGuard::new(
        decoder.take(stream_cap),
        Rc::clone(&refusal),
    ));
    let corrupt = |e: io::Error| match refusal.borrow_mut().take() {
        Some(r) => ExtractError::from(r),
        None => ExtractError::Corrupt(e.to_string()),
    };
    let mut out = Contents::default();
    // The README found so far and the rank of its name in README_NAMES.
    let mut best: Option<usize> = None;
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let kind = match entry.header().entry_type() {
            tar::EntryType::XGlobalHeader => continue,
            tar::EntryType::Directory => ListedKind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::Link => {
                ListedKind::File
            }
            tar::EntryType::Symlink => ListedKind::Symlink,
            other => {
                return Err(ExtractError::Unsupported {
                    path: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
                    kind: other.as_byte(),
                });
            }
        };
        out.total_entries += 1;
        if out.total_entries > limits.max_entries {
            return Err(ExtractError::TooManyEntries(limits.max_entries));
        }
        let path = clean_path(&entry.path_bytes())?;
        let regular = matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        );
        let size = if regular { entry.size() } else { 0 };
        out.total_bytes = out.total_bytes.saturating_add(size);
        if out.total_bytes > limits.max_unpacked_bytes {
            return Err(ExtractError::TooLarge(limits.max_unpacked_bytes));
        }
        let rank = if readme.is_some_and(|r| clean_path(r.as_bytes()).is_ok_and(|r| r == path)) {
            Some(0)
        } else {
            README_NAMES
                .iter()
                .position(|n| n.eq_ignore_ascii_case(&path))
                .map(|r| r + 1)
        };
        if regular && rank.is_some_and(|r| best.is_none_or(|b| r < b)) {
            let mut bytes = Vec::with_capacity(size.min(max_readme as u64) as usize);
            (&mut entry)
                .take(max_readme as u64)
                .read_to_end(&mut bytes)
                .map_err(corrupt)?;
            best = rank;
            out.readme = Some(Readme {
                path: path.clone(),
                text: String::from_utf8_lossy(&bytes).into_owned(),
                truncated: size > max_readme as u64,
            });
        }
        if out.entries.len() < max_listed {
            out.entries.push(Entry { path, kind, size });
        }
    }
    if let Some(r) = refusal.borrow_mut().take() {
        return Err(r.into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(files: &[(&str, &[u8])]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("peerpack.toml"),
            "[package]\nname = \"t\"\nversion = \"1.0.0\"\ndescription = \"d\"\nlicense = \"MIT\"\nauthors = [\"a\"]\n",
        )
        .unwrap();
        for (path, bytes) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        super::super::pack(dir.path()).unwrap().0
    }

    #[test]
    fn lists_entries_and_reads_the_root_readme() {
        let bytes = packed(&[
            ("docs/README.md", b"not this one"),
            ("readme", b"plain"),
            ("README.md", b"# Title\n\nbody"),
            ("src/a.txt", b"12345"),
        ]);
        let c = contents(&bytes[..], &ExtractLimits::default(), None, 100, 1024).unwrap();
        let readme = c.readme.unwrap();
        assert_eq!(readme.path, "README.md");
        assert_eq!(readme.text, "# Title\n\nbody");
        assert!(!readme.truncated);
        assert_eq!(c.total_entries, c.entries.len() as u64);
        let a = c.entries.iter().find(|e| e.path == "src/a.txt").unwrap();
        assert_eq!((a.kind, a.size), (ListedKind::File, 5));
        assert!(
            c.entries
                .iter()
                .any(|e| e.path == "src" && e.kind == ListedKind::Dir)
        );
    }

    #[test]
    fn the_manifest_names_the_readme() {
        let bytes = packed(&[("README.md", b"root"), ("docs/guide.md", b"named")]);
        let c = contents(
            &bytes[..],
            &ExtractLimits::default(),
            Some("./docs/guide.md"),
            100,
            1024,
        )
        .unwrap();
        assert_eq!(c.readme.unwrap().text, "named");
        // A name that is not in the archive: the root README still shows.
        let c = contents(
            &bytes[..],
            &ExtractLimits::default(),
            Some("gone.md"),
            100,
            1024,
        )
        .unwrap();
        assert_eq!(c.readme.unwrap().text, "root");
    }

    #[test]
    fn caps_the_listing_and_the_readme() {
        let long = vec![b'x'; 5000];
        let bytes = packed(&[("README", &long), ("a", b"1"), ("b", b"2")]);
        let c = contents(&bytes[..], &ExtractLimits::default(), None, 2, 100).unwrap();
        assert_eq!(c.entries.len(), 2);
        assert_eq!(c.total_entries, 4);
        let readme = c.readme.unwrap();
        assert_eq!(readme.text.len(), 100);
        assert!(readme.truncated);
    }

    #[test]
    fn refuses_what_extracting_would() {
        let bytes = packed(&[("a", &[7u8; 4096])]);
        let tight = ExtractLimits {
            max_unpacked_bytes: 1000,
            max_entries: 100,
        };
        assert!(matches!(
            contents(&bytes[..], &tight, None, 10, 10),
            Err(ExtractError::TooLarge(1000))
        ));
        let few = ExtractLimits {
            max_unpacked_bytes: 1 << 20,
            max_entries: 1,
        };
        assert!(matches!(
            contents(&bytes[..], &few, None, 10, 10),
            Err(ExtractError::TooManyEntries(1))
        ));
        assert!(matches!(
            contents(
                &b"not an archive"[..],
                &ExtractLimits::default(),
                None,
                10,
                10
            ),
            Err(ExtractError::Corrupt(_))
        ));
    }
}
