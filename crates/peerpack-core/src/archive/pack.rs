//! Building the deterministic archive: walk the package directory in sorted order, normalise
//! every header, compress with zstd and hash the bytes as they are written.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::select::Selection;
use super::{PackError, PackSummary, ZSTD_LEVEL, resolve_link};
use crate::content_id::ContentId;
use crate::limits::{DEFAULT_MAX_ENTRIES, DEFAULT_MAX_UNPACKED_BYTES, MAX_PATH_LEN};
use crate::manifest::Manifest;

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

/// What kind of entry [`list`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListedKind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symlink.
    Symlink,
}

/// One entry that would ship, as [`list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its path inside the package, `/`-separated.
    pub path: String,
    /// What it is.
    pub kind: ListedKind,
    /// Bytes of a file (0 for the rest).
    pub size: u64,
}

/// What packing `dir` would ship, in archive order, without packing it. Fails as packing
/// would on a bad manifest or a file that cannot be packed.
pub fn list(dir: &Path) -> Result<Vec<Listed>, PackError> {
    Manifest::from_dir(dir)?;
    Ok(collect(dir)?
        .into_iter()
        .map(|e| {
            let (kind, size) = match e.kind {
                Kind::Dir => (ListedKind::Dir, 0),
                Kind::File { len, .. } => (ListedKind::File, len),
                Kind::Symlink(_) => (ListedKind::Symlink, 0),
            };
            Listed {
                path: e.rel,
                kind,
                size,
            }
        })
        .collect())
}

fn collect(dir: &Path) -> Result<Vec<PackEntry>, PackError> {
    let selection = Selection::for_dir(dir)?;
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| {
            // A name that is not UTF-8 is let through, to be refused with its path below.
            match e.path().strip_prefix(dir).ok().and_then(Path::to_str) {
                Some(rel) => selection.ships(
                    &rel.replace(std::path::MAIN_SEPARATOR, "/"),
                    e.file_type().is_dir(),
                ),
                None => true,
            }
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
