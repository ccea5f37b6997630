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
//! **Extraction** ([`extract`]) is written for hostile input: it refuses absolute paths, `..`
//! components, symlinks or hard links whose target leaves the target directory, device files,
//! fifos, and archives that expand past [`ExtractLimits`]; it creates symlinks only after every
//! file, never writes beneath a symlink, and removes what it wrote when it fails. The target
//! directory must be new or empty, so nothing that was there can redirect a write. It also
//! refuses GNU long-name and PAX entries larger than [`MAX_LONG_NAME_ENTRY`] and
//! [`MAX_PAX_HEADER`] before the tar parser reads them whole into memory, and GNU sparse files.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::content_id::ContentId;
use crate::limits::{
    DEFAULT_MAX_ENTRIES, DEFAULT_MAX_UNPACKED_BYTES, MAX_LONG_NAME_ENTRY, MAX_PATH_LEN,
    MAX_PAX_HEADER,
};
use crate::manifest::{Manifest, ManifestError};

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

enum Kind {
    Dir,
    File { len: u64, executable: bool },
    Symlink(String),
}

struct PackEntry {
    abs: PathBuf,
    rel: String,
    kind: Kind,
}

/// Pack `dir` (which must hold a valid `peerpack.toml`) into `out`; returns the summary with
/// the content id computed over exactly the bytes written.
pub fn pack_to<W: Write>(dir: &Path, out: W) -> Result<PackSummary, PackError> {
    let manifest = Manifest::from_dir(dir)?;
    let entries = collect(dir)?;
    if let Some(readme) = &manifest.readme {
        let present = entries
            .iter()
            .any(|e| e.rel == *readme && matches!(e.kind, Kind::File { .. }));
        if !present {
            return Err(PackError::ReadmeMissing(readme.clone()));
        }
    }
    let unpacked_size: u64 = entries
        .iter()
        .map(|e| match e.kind {
            Kind::File { len, .. } => len,
            _ => 0,
        })
        .sum();
    if unpacked_size > DEFAULT_MAX_UNPACKED_BYTES {
        return Err(PackError::TooLarge {
            size: unpacked_size,
            max: DEFAULT_MAX_UNPACKED_BYTES,
        });
    }

    let io_at = |path: &Path| {
        let path = path.to_owned();
        move |source| PackError::Io { path, source }
    };
    let hashing = HashingWriter::new(out);
    let encoder = zstd::stream::Encoder::new(hashing, ZSTD_LEVEL).map_err(io_at(dir))?;
    let mut tar = tar::Builder::new(encoder);
    for entry in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("").map_err(io_at(&entry.abs))?;
        header.set_groupname("").map_err(io_at(&entry.abs))?;
        match &entry.kind {
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, &entry.rel, io::empty())
                    .map_err(io_at(&entry.abs))?;
            }
            Kind::File { len, executable } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if *executable { 0o755 } else { 0o644 });
                header.set_size(*len);
                let file = fs::File::open(&entry.abs).map_err(io_at(&entry.abs))?;
                tar.append_data(&mut header, &entry.rel, file.take(*len))
                    .map_err(io_at(&entry.abs))?;
            }
            Kind::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, &entry.rel, target)
                    .map_err(io_at(&entry.abs))?;
            }
        }
    }
    let encoder = tar.into_inner().map_err(io_at(dir))?;
    let hashing = encoder.finish().map_err(io_at(dir))?;
    let (mut out, content_id, size) = hashing.finish();
    out.flush().map_err(io_at(dir))?;
    Ok(PackSummary {
        manifest,
        content_id,
        size,
        entries: entries.len() as u64,
        unpacked_size,
    })
}

/// Pack `dir` into memory.
pub fn pack(dir: &Path) -> Result<(Vec<u8>, PackSummary), PackError> {
    let mut bytes = Vec::new();
    let summary = pack_to(dir, &mut bytes)?;
    Ok((bytes, summary))
}

fn collect(dir: &Path) -> Result<Vec<PackEntry>, PackError> {
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| {
            !e.file_name()
                .to_str()
                .is_some_and(|n| IGNORED_NAMES.contains(&n))
        });
    let mut entries = Vec::new();
    for item in walker {
        let item = item.map_err(|e| PackError::Io {
            path: e.path().unwrap_or(dir).to_owned(),
            source: e
                .into_io_error()
                .unwrap_or_else(|| io::Error::other("filesystem loop")),
        })?;
        let abs = item.path().to_owned();
        let rel_path = abs.strip_prefix(dir).unwrap_or(&abs);
        let rel = rel_path
            .to_str()
            .ok_or_else(|| PackError::NonUtf8Path(abs.clone()))?
            .replace(std::path::MAIN_SEPARATOR, "/");
        if rel.len() > MAX_PATH_LEN {
            return Err(PackError::PathTooLong(abs));
        }
        let ft = item.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            let meta = item.metadata().map_err(|e| PackError::Io {
                path: abs.clone(),
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| io::Error::other("metadata")),
            })?;
            Kind::File {
                len: meta.len(),
                executable: is_executable(&meta),
            }
        } else if ft.is_symlink() {
            let target = fs::read_link(&abs).map_err(|source| PackError::Io {
                path: abs.clone(),
                source,
            })?;
            let target = target
                .to_str()
                .ok_or_else(|| PackError::NonUtf8Path(abs.clone()))?
                .to_owned();
            if resolve_link(&rel, &target).is_none() {
                return Err(PackError::LinkOutside { path: abs, target });
            }
            Kind::Symlink(target)
        } else {
            return Err(PackError::SpecialFile(abs));
        };
        entries.push(PackEntry { abs, rel, kind });
        if entries.len() as u64 > DEFAULT_MAX_ENTRIES {
            return Err(PackError::TooManyEntries(DEFAULT_MAX_ENTRIES));
        }
    }
    Ok(entries)
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}

/// Resolve a symlink `target` relative to the directory holding `link` (both `/`-separated and
/// relative to the package root), lexically. `None` when the result leaves the root or the
/// target is absolute.
fn resolve_link(link: &str, target: &str) -> Option<Vec<String>> {
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

/// Writes through to `inner` while hashing and counting the bytes.
struct HashingWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: blake3::Hasher::new(),
            count: 0,
        }
    }

    fn finish(self) -> (W, ContentId, u64) {
        (self.inner, self.hasher.finalize().into(), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
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

/// What [`extract`] wrote.
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

/// Extract a zstd-compressed tar archive into `target`, which must not exist or be an empty
/// directory. On error, everything written is removed again.
pub fn extract<R: Read>(
    archive: R,
    target: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractSummary, ExtractError> {
    let created = match fs::read_dir(target) {
        Ok(mut it) => {
            if it.next().is_some() {
                return Err(ExtractError::TargetNotEmpty(target.to_owned()));
            }
            false
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(target).map_err(|source| ExtractError::Io {
                path: target.to_owned(),
                source,
            })?;
            true
        }
        Err(source) => {
            return Err(ExtractError::Io {
                path: target.to_owned(),
                source,
            });
        }
    };
    let result = extract_into(archive, target, limits);
    if result.is_err() {
        if created {
            let _ = fs::remove_dir_all(target);
        } else if let Ok(entries) = fs::read_dir(target) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = match e.file_type() {
                    Ok(t) if t.is_dir() => fs::remove_dir_all(&p),
                    _ => fs::remove_file(&p),
                };
            }
        }
    }
    result
}

/// Checks an entry path and turns it into its `/`-joined normal components.
fn clean_path(raw: &[u8]) -> Result<String, ExtractError> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| ExtractError::BadPath(String::from_utf8_lossy(raw).into_owned()))?;
    if text.len() > MAX_PATH_LEN || text.contains('\0') || text.contains('\\') {
        return Err(ExtractError::BadPath(text.to_owned()));
    }
    if text.starts_with('/') {
        return Err(ExtractError::AbsolutePath(text.to_owned()));
    }
    let mut parts = Vec::new();
    for seg in text.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(ExtractError::ParentComponent(text.to_owned())),
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        return Err(ExtractError::BadPath(text.to_owned()));
    }
    Ok(parts.join("/"))
}

fn extract_into<R: Read>(
    archive: R,
    target: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractSummary, ExtractError> {
    let decoder =
        zstd::stream::Decoder::new(archive).map_err(|e| ExtractError::Corrupt(e.to_string()))?;
    // Bound the decompressed stream (file data plus headers), so a zip bomb cannot keep the
    // decompressor busy without end; the guard bounds what the tar parser reads into memory.
    let stream_cap = limits
        .max_unpacked_bytes
        .saturating_add(limits.max_entries.saturating_mul(4096))
        .saturating_add(1 << 20);
    let refusal = Rc::new(RefCell::new(None));
    let mut tar = tar::Archive::new(HeaderGuard::new(
        decoder.take(stream_cap),
        Rc::clone(&refusal),
    ));
    // A read error may be the guard's refusal, passed through the tar parser: report that.
    let corrupt = |e: io::Error| match refusal.borrow_mut().take() {
        Some(r) => ExtractError::from(r),
        None => ExtractError::Corrupt(e.to_string()),
    };
    let io_at = |path: &Path| {
        let path = path.to_owned();
        move |source| ExtractError::Io { path, source }
    };

    let mut summary = ExtractSummary::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut files: HashSet<String> = HashSet::new();
    let mut symlinks: Vec<(String, String)> = Vec::new();
    let mut budget = limits.max_unpacked_bytes;
    let mut count = 0u64;

    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            continue;
        }
        count += 1;
        if count > limits.max_entries {
            return Err(ExtractError::TooManyEntries(limits.max_entries));
        }
        let rel = clean_path(&entry.path_bytes())?;
        if !seen.insert(rel.clone()) && kind != tar::EntryType::Directory {
            return Err(ExtractError::Duplicate(rel));
        }
        let dest = target.join(&rel);
        match kind {
            tar::EntryType::Directory => {
                fs::create_dir_all(&dest).map_err(io_at(&dest))?;
                summary.dirs += 1;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                // The entry's size: a PAX `size` record overrides the header's.
                let size = entry.size();
                if size > budget {
                    return Err(ExtractError::TooLarge(limits.max_unpacked_bytes));
                }
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).map_err(io_at(parent))?;
                }
                // Large writes: io::copy fills the BufWriter's own buffer directly.
                let mut out = io::BufWriter::with_capacity(
                    (size as usize).clamp(8 * 1024, 1024 * 1024),
                    open_new(&dest, &rel)?,
                );
                let written = io::copy(&mut (&mut entry).take(size), &mut out).map_err(corrupt)?;
                if written != size {
                    return Err(ExtractError::Corrupt(format!("entry {rel:?} is truncated")));
                }
                let file = out.into_inner().map_err(|e| io_at(&dest)(e.into_error()))?;
                budget -= size;
                summary.bytes += size;
                summary.files += 1;
                set_mode(&file, entry.header().mode().unwrap_or(0o644)).map_err(io_at(&dest))?;
                files.insert(rel);
            }
            tar::EntryType::Symlink => {
                let target_text = link_target(&entry, &rel)?;
                if resolve_link(&rel, &target_text).is_none() {
                    return Err(ExtractError::LinkOutside {
                        path: rel,
                        target: target_text,
                    });
                }
                symlinks.push((rel, target_text));
            }
            tar::EntryType::Link => {
                let target_text = link_target(&entry, &rel)?;
                let source =
                    clean_path(target_text.as_bytes()).map_err(|_| ExtractError::LinkOutside {
                        path: rel.clone(),
                        target: target_text.clone(),
                    })?;
                if !files.contains(&source) {
                    return Err(ExtractError::LinkOutside {
                        path: rel,
                        target: target_text,
                    });
                }
                let src = target.join(&source);
                let size = fs::metadata(&src).map_err(io_at(&src))?.len();
                if size > budget {
                    return Err(ExtractError::TooLarge(limits.max_unpacked_bytes));
                }
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).map_err(io_at(parent))?;
                }
                let mut out = open_new(&dest, &rel)?;
                let mut input = fs::File::open(&src).map_err(io_at(&src))?;
                io::copy(&mut input, &mut out).map_err(io_at(&dest))?;
                set_mode(
                    &out,
                    fs::metadata(&src).map(|m| mode_of(&m)).unwrap_or(0o644),
                )
                .map_err(io_at(&dest))?;
                budget -= size;
                summary.bytes += size;
                summary.files += 1;
                files.insert(rel);
            }
            tar::EntryType::Char => return Err(device(rel, "character device")),
            tar::EntryType::Block => return Err(device(rel, "block device")),
            tar::EntryType::Fifo => return Err(device(rel, "fifo")),
            other => {
                return Err(ExtractError::Unsupported {
                    path: rel,
                    kind: other.as_byte(),
                });
            }
        }
    }

    if let Some(r) = refusal.borrow_mut().take() {
        return Err(r.into());
    }

    for (rel, link_to) in &symlinks {
        create_symlink(target, rel, link_to)?;
        summary.symlinks += 1;
    }
    // A chain of individually harmless links can still lead out: resolve each one for real.
    let root = fs::canonicalize(target).map_err(io_at(target))?;
    for (rel, link_to) in &symlinks {
        match fs::canonicalize(target.join(rel)) {
            Ok(resolved) if resolved.starts_with(&root) => {}
            _ => {
                return Err(ExtractError::LinkOutside {
                    path: rel.clone(),
                    target: link_to.clone(),
                });
            }
        }
    }
    Ok(summary)
}

/// Why [`HeaderGuard`] stopped the stream.
#[derive(Debug, Clone)]
enum Refusal {
    TooLarge {
        kind: &'static str,
        size: u64,
        max: u64,
    },
    Sparse {
        path: String,
        size: u64,
    },
}

impl From<Refusal> for ExtractError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::TooLarge { kind, size, max } => {
                ExtractError::ExtensionTooLarge { kind, size, max }
            }
            Refusal::Sparse { path, size } => ExtractError::Sparse { path, size },
        }
    }
}

const BLOCK: u64 = 512;

/// Sits between the decompressor and `tar::Archive` and reads every tar header before the
/// parser does, so that it can refuse an entry the parser would read whole into memory (GNU
/// long names and links, PAX headers) when it is larger than any valid one, and GNU sparse
/// files (whose extra headers it does not follow).
///
/// It finds the headers the way tar 0.4 does: each entry takes its header block plus its size
/// rounded up to whole blocks; the size is the header's (octal, or base-256 when the high bit
/// is set), unless a PAX `x` header before it set `size`. That override applies to the next
/// entry that is not itself an extension (`L`, `K`, `x`, `g`), and only an `L`, `K` or `x`
/// entry with a ustar or GNU magic carries it on; any other entry uses it up. Headers are read
/// with tar's own [`tar::Header`] and PAX records with tar's own [`tar::PaxExtensions`], so the
/// guard and the parser cannot disagree about where the next header is. An all-zero block ends
/// the archive for the parser, and the guard stops looking there too.
struct HeaderGuard<R> {
    inner: R,
    /// The header read from `inner` ahead of the parser; `header_len` bytes of it are filled,
    /// `header_at` of those have been handed on.
    header: [u8; BLOCK as usize],
    header_len: usize,
    header_at: usize,
    /// Bytes of the current entry's data still to pass, then of its padding.
    data_left: u64,
    pad_left: u64,
    /// The data of a PAX `x` entry as it passes (at most [`MAX_PAX_HEADER`] bytes).
    pax: Option<Vec<u8>>,
    /// The `size` the last PAX header set for the next entry that is not an extension.
    pax_size: Option<u64>,
    /// The parser has seen the end of the archive.
    ended: bool,
    /// Where the refusal goes for [`extract`] to report.
    refusal: Rc<RefCell<Option<Refusal>>>,
    /// Set once refused: every later read fails too.
    refused: Option<String>,
}

impl<R: Read> HeaderGuard<R> {
    fn new(inner: R, refusal: Rc<RefCell<Option<Refusal>>>) -> Self {
        Self {
            inner,
            header: [0; BLOCK as usize],
            header_len: 0,
            header_at: 0,
            data_left: 0,
            pad_left: 0,
            pax: None,
            pax_size: None,
            ended: false,
            refusal,
            refused: None,
        }
    }

    fn refuse(&mut self, r: Refusal) -> io::Error {
        let text = ExtractError::from(r.clone()).to_string();
        *self.refusal.borrow_mut() = Some(r);
        self.refused = Some(text.clone());
        io::Error::new(io::ErrorKind::InvalidData, text)
    }

    /// Look at the header in `self.header` (a whole block) before any of it is handed on.
    fn inspect(&mut self) -> io::Result<()> {
        if self.header.iter().all(|b| *b == 0) {
            self.ended = true;
            return Ok(());
        }
        let mut header = tar::Header::new_old();
        header.as_mut_bytes().copy_from_slice(&self.header);
        let kind = header.entry_type();
        let extension = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        let mut size = header
            .entry_size()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let pax_size = self.pax_size.take();
        if !extension && let Some(s) = pax_size {
            size = s;
        }
        let too_large = |kind, max| Refusal::TooLarge { kind, size, max };
        let refusal = match kind.as_byte() {
            b'L' if size > MAX_LONG_NAME_ENTRY => Some(too_large(
                "GNU long name entry (type 'L')",
                MAX_LONG_NAME_ENTRY,
            )),
            b'K' if size > MAX_LONG_NAME_ENTRY => Some(too_large(
                "GNU long link entry (type 'K')",
                MAX_LONG_NAME_ENTRY,
            )),
            b'x' if size > MAX_PAX_HEADER => {
                Some(too_large("PAX header (type 'x')", MAX_PAX_HEADER))
            }
            b'g' if size > MAX_PAX_HEADER => {
                Some(too_large("PAX global header (type 'g')", MAX_PAX_HEADER))
            }
            b'S' => Some(Refusal::Sparse {
                path: String::from_utf8_lossy(&header.path_bytes()).into_owned(),
                size,
            }),
            _ => None,
        };
        if let Some(r) = refusal {
            return Err(self.refuse(r));
        }
        // What tar 0.4 carries on to the next entry: see the type's documentation.
        let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
        if recognized && (kind.is_gnu_longname() || kind.is_gnu_longlink()) {
            self.pax_size = pax_size;
        }
        let padded = size
            .checked_add(BLOCK - 1)
            .map(|s| s & !(BLOCK - 1))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "entry size overflows"))?;
        self.data_left = size;
        self.pad_left = padded - size;
        if recognized && kind.is_pax_local_extensions() {
            self.pax = Some(Vec::with_capacity(size as usize));
            if size == 0 {
                self.finish_pax();
            }
        }
        Ok(())
    }

    /// The PAX entry's data has passed: remember its `size`, read as tar 0.4 reads it (the
    /// first `size` record; none when a record before it, or its value, is malformed).
    fn finish_pax(&mut self) {
        let Some(data) = self.pax.take() else {
            return;
        };
        self.pax_size = None;
        for record in tar::PaxExtensions::new(&data) {
            let Ok(record) = record else {
                return;
            };
            if record.key() != Ok("size") {
                continue;
            }
            self.pax_size = record.value().ok().and_then(|v| v.parse::<u64>().ok());
            return;
        }
    }

    /// Pass up to `left` bytes of entry data or padding from `inner`.
    fn pass(&mut self, buf: &mut [u8], left: u64) -> io::Result<usize> {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.inner.read(&mut buf[..want])
    }
}

impl<R: Read> Read for HeaderGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(text) = &self.refused {
            return Err(io::Error::new(io::ErrorKind::InvalidData, text.clone()));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.header_at < self.header_len {
                let n = (self.header_len - self.header_at).min(buf.len());
                buf[..n].copy_from_slice(&self.header[self.header_at..self.header_at + n]);
                self.header_at += n;
                return Ok(n);
            }
            if self.header_len > 0 && self.header_len < BLOCK as usize {
                // The stream ended inside a header; the parser reports it.
                return Ok(0);
            }
            if self.data_left > 0 {
                let n = self.pass(buf, self.data_left)?;
                if n == 0 {
                    return Ok(0);
                }
                self.data_left -= n as u64;
                if let Some(pax) = &mut self.pax {
                    pax.extend_from_slice(&buf[..n]);
                    if self.data_left == 0 {
                        self.finish_pax();
                    }
                }
                return Ok(n);
            }
            if self.pad_left > 0 {
                let n = self.pass(buf, self.pad_left)?;
                self.pad_left -= n as u64;
                return Ok(n);
            }
            if self.ended {
                return self.inner.read(buf);
            }
            // At a header: read it whole before handing any of it on.
            self.header_len = 0;
            self.header_at = 0;
            while self.header_len < BLOCK as usize {
                match self.inner.read(&mut self.header[self.header_len..]) {
                    Ok(0) => break,
                    Ok(n) => self.header_len += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if self.header_len == 0 {
                return Ok(0);
            }
            if self.header_len == BLOCK as usize {
                self.inspect()?;
            }
        }
    }
}

fn device(path: String, kind: &'static str) -> ExtractError {
    ExtractError::DeviceFile { path, kind }
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>, rel: &str) -> Result<String, ExtractError> {
    let bytes = entry
        .link_name_bytes()
        .ok_or_else(|| ExtractError::Corrupt(format!("link {rel:?} has no target")))?;
    String::from_utf8(bytes.into_owned()).map_err(|_| ExtractError::BadPath(rel.to_owned()))
}

fn open_new(dest: &Path, rel: &str) -> Result<fs::File, ExtractError> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                ExtractError::Duplicate(rel.to_owned())
            } else {
                ExtractError::Io {
                    path: dest.to_owned(),
                    source,
                }
            }
        })
}

#[cfg(unix)]
fn mode_of(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode()
}

#[cfg(not(unix))]
fn mode_of(_meta: &fs::Metadata) -> u32 {
    0o644
}

#[cfg(unix)]
fn set_mode(file: &fs::File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &fs::File, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn create_symlink(target: &Path, rel: &str, link_to: &str) -> Result<(), ExtractError> {
    // Every ancestor must be a real directory: a write must never pass through a link.
    let mut cur = target.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        cur.push(part);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(ExtractError::BeneathSymlink(rel.to_owned()));
            }
            Ok(_) => {}
            Err(_) => {
                fs::create_dir_all(&cur).map_err(|source| ExtractError::Io {
                    path: cur.clone(),
                    source,
                })?;
            }
        }
    }
    let dest = target.join(rel);
    std::os::unix::fs::symlink(link_to, &dest).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            ExtractError::Duplicate(rel.to_owned())
        } else {
            ExtractError::Io { path: dest, source }
        }
    })
}

#[cfg(not(unix))]
fn create_symlink(_target: &Path, rel: &str, _link_to: &str) -> Result<(), ExtractError> {
    Err(ExtractError::Unsupported {
        path: rel.to_owned(),
        kind: b'2',
    })
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

    #[test]
    fn clean_path_rules() {
        assert_eq!(clean_path(b"./a//b").unwrap(), "a/b");
        assert!(matches!(
            clean_path(b"/etc/x"),
            Err(ExtractError::AbsolutePath(_))
        ));
        assert!(matches!(
            clean_path(b"a/../../x"),
            Err(ExtractError::ParentComponent(_))
        ));
        assert!(matches!(clean_path(b"."), Err(ExtractError::BadPath(_))));
        assert!(matches!(clean_path(b"\xff"), Err(ExtractError::BadPath(_))));
    }
}
