//! The content-addressed blob store: one file per archive, named by its content id.
//!
//! Layout: `ROOT/<first 2 hex digits>/<64 hex digits>`, its outline beside it
//! (`<64 hex digits>.outline`: the archive size as 8 little-endian bytes, then the chaining
//! values), temporary files in `ROOT/tmp`, downloads in progress in `ROOT/partial`, unpacked
//! trees in `ROOT/unpacked` ([`crate::unpacked`]; removed with their blob).
//! A blob is written to a temporary file, hashed as it is written, fsynced, checked against
//! the expected id and only then renamed into place (and the directory fsynced), so a partial
//! or wrong blob is never visible under a content id. Reads hash again: a blob damaged on
//! disk is reported as [`Error::Corrupt`], never served.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use peerpack_core::ContentId;
use peerpack_core::outline::{Outline, OutlineBuilder};

/// Blob store errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error.
    #[error("blob store {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// No blob with this id.
    #[error("blob {0} is not in the store")]
    NotFound(ContentId),
    /// The bytes offered do not hash to the expected id.
    #[error("refused blob: expected {expected}, the bytes hash to {actual}")]
    HashMismatch {
        /// The id the bytes should have.
        expected: ContentId,
        /// The id they have.
        actual: ContentId,
    },
    /// A stored blob no longer hashes to its id.
    #[error("blob {id} is corrupt on disk ({}): its bytes hash to {actual}; delete it and fetch it again", path.display())]
    Corrupt {
        /// The blob's id.
        id: ContentId,
        /// Its file.
        path: PathBuf,
        /// What its bytes hash to now.
        actual: ContentId,
    },
}

/// Compare what a blob's bytes hash to with its id.
fn check(id: &ContentId, path: &Path, actual: ContentId) -> Result<(), Error> {
    if actual == *id {
        Ok(())
    } else {
        Err(Error::Corrupt {
            id: *id,
            path: path.to_owned(),
            actual,
        })
    }
}

/// The blob store.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

impl BlobStore {
    /// Open (creating) the store rooted at `root`; clears temporary files left by a crash.
    pub fn open(root: &Path) -> Result<Self, Error> {
        let tmp = root.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_at(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io_at(&tmp))?;
        let partial = root.join("partial");
        fs::create_dir_all(&partial).map_err(io_at(&partial))?;
        let store = Self {
            root: root.to_owned(),
        };
        store.unpacked().sweep(|id| store.contains(id));
        Ok(store)
    }

    /// The unpacked trees of this store's archives.
    pub fn unpacked(&self) -> crate::unpacked::Unpacked {
        crate::unpacked::Unpacked::new(self.root.join("unpacked"))
    }

    /// Where the blob with `id` lives (whether or not it exists).
    pub fn path(&self, id: &ContentId) -> PathBuf {
        let hex = id.to_hex();
        self.root.join(&hex[..2]).join(hex)
    }

    /// Whether a blob with `id` is stored (not checked against its hash).
    pub fn contains(&self, id: &ContentId) -> bool {
        self.path(id).is_file()
    }

    /// Store `bytes`; returns their content id.
    pub fn put(&self, bytes: &[u8]) -> Result<ContentId, Error> {
        self.write(&mut &bytes[..], None)
    }

    /// Store `bytes` only if they hash to `expected`.
    pub fn put_expecting(&self, expected: &ContentId, bytes: &[u8]) -> Result<(), Error> {
        self.write(&mut &bytes[..], Some(expected)).map(|_| ())
    }

    /// Stream a blob from `reader` into the store, refusing it unless it hashes to `expected`
    /// (when given).
    #[tracing::instrument(skip_all, fields(expected = ?expected))]
    pub fn write(
        &self,
        reader: &mut dyn Read,
        expected: Option<&ContentId>,
    ) -> Result<ContentId, Error> {
        let tmp_dir = self.root.join("tmp");
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io_at(&tmp_dir))?;
        let mut hasher = OutlineBuilder::default();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_at(tmp.path())(e)),
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n]).map_err(io_at(tmp.path()))?;
        }
        let outline = hasher.finish();
        let actual = outline.content_id();
        if let Some(expected) = expected.filter(|e| **e != actual) {
            return Err(Error::HashMismatch {
                expected: *expected,
                actual,
            });
        }
        tmp.as_file().sync_all().map_err(io_at(tmp.path()))?;
        let dest = self.path(&actual);
        let dir = dest.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        tmp.persist(&dest).map_err(|e| io_at(&dest)(e.error))?;
        peerpack_core::fs::sync_dir(dir).map_err(io_at(dir))?;
        self.save_outline(&actual, &outline);
        Ok(actual)
    }

    fn outline_path(&self, id: &ContentId) -> PathBuf {
        let mut p = self.path(id).into_os_string();
        p.push(".outline");
        PathBuf::from(p)
    }

    /// Write the outline beside its blob. A cache only, checked against the id on every read:
    /// losing it costs a re-hash, so it is not flushed to disk.
    fn save_outline(&self, id: &ContentId, outline: &Outline) {
        let path = self.outline_path(id);
        let mut bytes = outline.size().to_le_bytes().to_vec();
        bytes.extend_from_slice(&outline.to_bytes());
        // The temporary file goes to tmp/, which opening the store sweeps.
        if let Err(e) = peerpack_core::fs::replace_cache_via(&self.root.join("tmp"), &path, &bytes)
        {
            tracing::warn!(path = %path.display(), error = %e, "could not save an outline");
        }
    }

    /// The outline of a stored blob: from the file beside it when that checks out against
    /// the id, otherwise computed from the blob (which is then checked) and saved.
    #[tracing::instrument(skip(self))]
    pub fn outline(&self, id: &ContentId) -> Result<Outline, Error> {
        if let Ok(bytes) = fs::read(self.outline_path(id))
            && bytes.len() >= 8
        {
            let mut size = [0u8; 8];
            size.copy_from_slice(&bytes[..8]);
            if let Ok(o) = Outline::new(id, u64::from_le_bytes(size), &bytes[8..]) {
                return Ok(o);
            }
        }
        let (path, mut file) = self.open_file(id)?;
        let outline = Outline::read(&mut file).map_err(io_at(&path))?;
        check(id, &path, outline.content_id())?;
        self.save_outline(id, &outline);
        Ok(outline)
    }

    /// The size of a stored blob.
    pub fn size(&self, id: &ContentId) -> Result<u64, Error> {
        let (path, file) = self.open_file(id)?;
        Ok(file.metadata().map_err(io_at(&path))?.len())
    }

    /// Where a download of `id` in progress keeps what it has so far.
    pub fn partial_path(&self, id: &ContentId) -> PathBuf {
        self.root.join("partial").join(id.to_hex())
    }

    /// Move a finished download into place. The caller has checked every piece against
    /// `outline`, which merges to `id`.
    #[tracing::instrument(skip(self, outline))]
    pub fn adopt_partial(&self, id: &ContentId, outline: &Outline) -> Result<(), Error> {
        let from = self.partial_path(id);
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&from)
            .map_err(io_at(&from))?;
        file.set_len(outline.size()).map_err(io_at(&from))?;
        file.sync_all().map_err(io_at(&from))?;
        drop(file);
        let dest = self.path(id);
        let dir = dest.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        fs::rename(&from, &dest).map_err(io_at(&dest))?;
        peerpack_core::fs::sync_dir(dir).map_err(io_at(dir))?;
        self.save_outline(id, outline);
        Ok(())
    }

    /// Read a whole blob, checking its hash.
    #[tracing::instrument(skip(self))]
    pub fn get(&self, id: &ContentId) -> Result<Vec<u8>, Error> {
        let (path, mut file) = self.open_file(id)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_at(&path))?;
        check(id, &path, ContentId::of(&bytes))?;
        Ok(bytes)
    }

    /// Check a stored blob's hash without keeping it in memory; returns its size.
    #[tracing::instrument(skip(self))]
    pub fn verify(&self, id: &ContentId) -> Result<u64, Error> {
        let (path, mut file) = self.open_file(id)?;
        let mut hasher = blake3::Hasher::new();
        let size = io::copy(&mut file, &mut hasher).map_err(io_at(&path))?;
        check(id, &path, hasher.finalize().into())?;
        Ok(size)
    }

    fn open_file(&self, id: &ContentId) -> Result<(PathBuf, fs::File), Error> {
        let path = self.path(id);
        match fs::File::open(&path) {
            Ok(f) => Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(*id)),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    /// Read `length` bytes of a stored blob from `offset` (fewer at its end); also returns the
    /// blob's total size. Not hashed here: whoever receives the bytes verifies them against
    /// the content id.
    pub fn read_range(
        &self,
        id: &ContentId,
        offset: u64,
        length: u32,
    ) -> Result<(Vec<u8>, u64), Error> {
        use std::io::Seek;
        let (path, mut file) = self.open_file(id)?;
        let total = file.metadata().map_err(io_at(&path))?.len();
        let end = offset.saturating_add(u64::from(length)).min(total);
        let len = end.saturating_sub(offset);
        // Read straight into uninitialised capacity: no zeroing pass over every chunk.
        let mut buf = Vec::with_capacity(len as usize);
        if len > 0 {
            file.seek(io::SeekFrom::Start(offset))
                .map_err(io_at(&path))?;
            (&mut file)
                .take(len)
                .read_to_end(&mut buf)
                .map_err(io_at(&path))?;
            if buf.len() as u64 != len {
                return Err(io_at(&path)(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        Ok((buf, total))
    }

    /// Remove a blob (no error if absent), and its unpacked tree.
    pub fn remove(&self, id: &ContentId) -> Result<(), Error> {
        let _ = fs::remove_file(self.outline_path(id));
        let path = self.path(id);
        let removed = match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_at(&path)(e)),
            _ => Ok(()),
        };
        self.unpacked().remove(id);
        removed
    }

    /// Every stored blob's id (by file name; not hashed).
    pub fn list(&self) -> Result<Vec<ContentId>, Error> {
        let mut out = Vec::new();
        for shard in fs::read_dir(&self.root).map_err(io_at(&self.root))? {
            let shard = shard.map_err(io_at(&self.root))?.path();
            let is_shard = shard
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()));
            if !is_shard || !shard.is_dir() {
                continue;
            }
            for f in fs::read_dir(&shard).map_err(io_at(&shard))? {
                let name = f.map_err(io_at(&shard))?.file_name();
                if let Some(id) = name.to_str().and_then(|n| {
                    format!("{}{n}", peerpack_core::content_id::PREFIX)
                        .parse()
                        .ok()
                }) {
                    out.push(id);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}
