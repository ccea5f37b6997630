//! The deterministic package archive and its safe extraction.
//!
//! **Format.** A tar stream (GNU headers) compressed with zstd at level [`ZSTD_LEVEL`]. Entries
//! are the package directory's files, directories and relative symlinks, in depth-first order
//! with each directory's children sorted by name. Every header is normalised: mtime 0, uid/gid
//! 0, empty user/group names, mode `0755` for directories and executable files and `0644` for
//! other files. `.git`, `.hg`, `.svn`, `.DS_Store` and [`INSTALL_MARKER`] are left out. So the
//! same directory gives the same bytes, and the same content id, whatever its mtimes, owners,
//! permission bits beyond the executable bit, or creation order.
//!
//! **Extraction** ([`extract`](fn@extract)) is written for hostile input: it refuses absolute
//! paths, `..` components, symlinks or hard links whose target leaves the target directory,
//! device files, fifos, and archives that expand past [`ExtractLimits`]; it creates symlinks
//! only after every file, never writes beneath a symlink, and removes what it wrote when it
//! fails. The target directory must be new or empty, so nothing that was there can redirect a
//! write. It also refuses GNU long-name and PAX entries larger than
//! [`MAX_LONG_NAME_ENTRY`](crate::limits::MAX_LONG_NAME_ENTRY) and
//! [`MAX_PAX_HEADER`](crate::limits::MAX_PAX_HEADER) before the tar parser reads them whole into
//! memory, and GNU sparse files.
//!
//! The code is split in four: `archive/select.rs` decides which files ship (ignore rules),
//! `archive/pack.rs` builds the archive, `archive/extract.rs` unpacks one under its limits and
//! guards, `archive/inspect.rs` lists one and reads its README under the same. The types they
//! share, their errors among them, live here.

mod extract;
mod inspect;
mod pack;
mod secrets;
mod select;

use std::io;
use std::path::PathBuf;

use crate::content_id::ContentId;
use crate::limits::{DEFAULT_MAX_ENTRIES, DEFAULT_MAX_UNPACKED_BYTES, MAX_PATH_LEN};
use crate::manifest::{Manifest, ManifestError};

pub use extract::extract;
pub use inspect::{Contents, Entry, README_NAMES, Readme, contents};
pub use pack::{Listed, ListedKind, list, pack, pack_to};
pub use secrets::{Suspect, suspects};
pub use select::{DEFAULT_IGNORES, IGNORE_FILE, Selection};

/// The zstd level archives are compressed with.
pub const ZSTD_LEVEL: i32 = 3;
/// The file `peerpack install` writes into every tree it installs, to know later that the tree
/// is its own. It describes an install, not a package, so packing leaves it out: a package
/// published from an installed tree has the content it was installed with.
pub const INSTALL_MARKER: &str = ".peerpack-install";
/// Names left out of archives wherever they appear.
pub const IGNORED_NAMES: &[&str] = &[".git", ".hg", ".svn", ".DS_Store", INSTALL_MARKER];

/// Why a directory could not be packed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// The manifest is missing or invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Reading the directory failed.
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A path that is not valid UTF-8 (archives only hold UTF-8 paths).
    #[error("{}: file names must be valid UTF-8", .0.display())]
    NonUtf8Path(PathBuf),
    /// A device file, socket or fifo.
    #[error("{}: is a device, socket or fifo; a package holds only files, directories and symlinks", .0.display())]
    SpecialFile(PathBuf),
    /// A symlink that points outside the package (or is absolute).
    #[error("{}: symlink target {target:?} points outside the package", path.display())]
    LinkOutside {
        /// The symlink.
        path: PathBuf,
        /// Its target.
        target: String,
    },
    /// The manifest names a README that is not in the package.
    #[error("the manifest names readme {0:?}, which is not a file in the package")]
    ReadmeMissing(String),
    /// The files add up to more than the extraction limit.
    #[error(
        "the package's files add up to {size} bytes; archives may expand to at most {max} bytes"
    )]
    TooLarge {
        /// Total size of the files.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// More entries than the extraction limit.
    #[error("the package has more than {0} files and directories")]
    TooManyEntries(u64),
    /// The package's `.peerpackignore` does not parse.
    #[error("{}: {reason}", file.display())]
    Ignore {
        /// The ignore file.
        file: PathBuf,
        /// The first line that does not parse, and why.
        reason: String,
    },
    /// A path longer than [`MAX_PATH_LEN`].
    #[error("{}: paths inside a package are at most {MAX_PATH_LEN} bytes", .0.display())]
    PathTooLong(PathBuf),
}

/// What [`pack_to`] produced.
#[derive(Debug, Clone)]
pub struct PackSummary {
    /// The package's manifest.
    pub manifest: Manifest,
    /// BLAKE3 of the archive bytes.
    pub content_id: ContentId,
    /// Archive size in bytes.
    pub size: u64,
    /// Number of entries (files, directories, symlinks).
    pub entries: u64,
    /// Total size of the files before compression.
    pub unpacked_size: u64,
}

/// Limits applied while extracting.
#[derive(Debug, Clone, Copy)]
pub struct ExtractLimits {
    /// Most bytes the files may add up to.
    pub max_unpacked_bytes: u64,
    /// Most entries.
    pub max_entries: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self {
            max_unpacked_bytes: DEFAULT_MAX_UNPACKED_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// Why an archive was not extracted. Nothing stays behind in the target when this is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The target exists and is not an empty directory.
    #[error("{}: already exists and is not empty", .0.display())]
    TargetNotEmpty(PathBuf),
    /// Writing the target failed.
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The bytes are not a valid zstd-compressed tar stream.
    #[error("corrupt archive: {0}")]
    Corrupt(String),
    /// An entry with an absolute path.
    #[error("unsafe archive: entry {0:?} has an absolute path")]
    AbsolutePath(String),
    /// An entry path with a `..` component.
    #[error("unsafe archive: entry {0:?} contains a '..' component")]
    ParentComponent(String),
    /// An entry path that is empty, not UTF-8 or too long.
    #[error("unsafe archive: invalid entry path {0:?}")]
    BadPath(String),
    /// A symlink or hard link whose target leaves the target directory or is not in the
    /// archive.
    #[error(
        "unsafe archive: link {path:?} -> {target:?} points outside the package or to nothing in it"
    )]
    LinkOutside {
        /// The link.
        path: String,
        /// Its target.
        target: String,
    },
    /// An entry whose path goes through a symlink.
    #[error("unsafe archive: entry {0:?} lies beneath a symlink")]
    BeneathSymlink(String),
    /// A character or block device or a fifo.
    #[error(
        "unsafe archive: entry {path:?} is a {kind}; packages hold only files, directories and links"
    )]
    DeviceFile {
        /// The entry.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// An entry type this format does not use.
    #[error("unsupported archive entry {path:?} of type {kind:?}")]
    Unsupported {
        /// The entry.
        path: String,
        /// Its tar type byte.
        kind: u8,
    },
    /// The archive expands past [`ExtractLimits::max_unpacked_bytes`].
    #[error("archive expands past the limit of {0} bytes")]
    TooLarge(u64),
    /// The archive has more than [`ExtractLimits::max_entries`] entries.
    #[error("archive has more than {0} entries")]
    TooManyEntries(u64),
    /// Two entries with the same path.
    #[error("archive has more than one entry at {0:?}")]
    Duplicate(String),
    /// A GNU long-name or long-link entry, or a PAX header, larger than any valid one; refused
    /// before its data is read.
    #[error("unsafe archive: a {kind} of {size} bytes; at most {max} bytes are accepted")]
    ExtensionTooLarge {
        /// What the entry is, with its tar type byte.
        kind: &'static str,
        /// The size its header claims.
        size: u64,
        /// The most accepted.
        max: u64,
    },
    /// A GNU sparse file (tar type `S`): packages hold only plain files.
    #[error(
        "unsupported archive entry {path:?}: a GNU sparse file (type 'S') of {size} bytes in the archive; packages hold only plain files"
    )]
    Sparse {
        /// The entry's path as its header gives it.
        path: String,
        /// The size its header claims.
        size: u64,
    },
}

impl ExtractError {
    /// Whether the archive itself is to blame (unsafe or malformed), rather than the target
    /// or the disk: such an archive would be refused anywhere.
    pub fn is_unsafe_archive(&self) -> bool {
        !matches!(self, Self::Io { .. } | Self::TargetNotEmpty(_))
    }
}

/// What [`extract`](fn@extract) wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractSummary {
    /// Regular files (hard links included).
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symlinks.
    pub symlinks: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// Resolve a symlink `target` relative to the directory holding `link` (both `/`-separated and
/// relative to the package root), lexically. `None` when the result leaves the root or the
/// target is absolute.
pub fn resolve_link(link: &str, target: &str) -> Option<Vec<String>> {
    if target.is_empty() || target.starts_with('/') || target.contains('\\') {
        return None;
    }
    let mut parts: Vec<String> = link.split('/').map(str::to_owned).collect();
    parts.pop();
    for seg in target.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s.to_owned()),
        }
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_link_stays_inside() {
        assert_eq!(resolve_link("a/b", "c"), Some(vec!["a".into(), "c".into()]));
        assert_eq!(resolve_link("a/b", "../c"), Some(vec!["c".into()]));
        assert_eq!(resolve_link("a/b", "../../c"), None);
        assert_eq!(resolve_link("a", "/etc/passwd"), None);
        assert_eq!(resolve_link("a", "."), Some(vec![]));
    }
}
