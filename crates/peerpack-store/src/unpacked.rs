//! Unpacked archives: each archive the node has installed, also kept as a tree beside the
//! blob, so that installing it again places files instead of unpacking it again.
//!
//! Layout, under the blob store's root: `unpacked/<64 hex digits>/` (the tree) and
//! `unpacked/<64 hex digits>.index` (what the tree holds: each entry's path, kind and mode,
//! and each file's size and modification time). Unpacking goes into
//! `unpacked/.tmp-PID-NANOS`, hashing the archive as it is read; the tree is renamed into
//! place only when the bytes hashed to the archive's id, the files are made read-only, and
//! the file system is flushed. The index is written last, atomically: a tree is used only when
//! its index exists. So a crash leaves at worst a tree without an index, which the next
//! [`Unpacked::sweep`] removes.
//!
//! Before a tree is used, every entry is checked against the index, by `lstat` only (no
//! reading): kind, size, modification time, and that files are still read-only. A tree that
//! differs (edited through a hard link, damaged) is removed and the archive is unpacked again.
//!
//! [`Tree::place`] builds a new directory from a tree, file by file, in one of the ways of
//! [`LinkMode`].

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use peerpack_core::ContentId;
use peerpack_core::archive::{ExtractError, ExtractLimits};
use serde::{Deserialize, Serialize};

/// How [`Tree::place`] puts files in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkMode {
    /// Clone each file (reflink) where the file system copies on write, else copy it. The
    /// installed files are the user's own, with the archive's modes.
    #[default]
    Auto,
    /// Always copy.
    Copy,
    /// Hard-link each file to the tree: no bytes are written, but the installed files are the
    /// tree's own and therefore read-only. Where a link cannot be made (another file system),
    /// files are cloned or copied as with `auto`.
    Hardlink,
    /// Keep no unpacked trees: unpack the archive on every install.
    Extract,
}

impl std::fmt::Display for LinkMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Copy => "copy",
            Self::Hardlink => "hardlink",
            Self::Extract => "extract",
        })
    }
}

/// How a tree's files were placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placed {
    /// Cloned (reflinks).
    Reflink,
    /// Copied.
    Copy,
    /// Hard-linked (read-only).
    Hardlink,
}

impl std::fmt::Display for Placed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Reflink => "reflinked",
            Self::Copy => "copied",
            Self::Hardlink => "hard-linked",
        })
    }
}

/// Why an archive could not be unpacked into the cache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Extraction refused the archive or failed.
    #[error(transparent)]
    Extract(#[from] ExtractError),
    /// A file of the cache could not be read or written.
    #[error("unpacked archive {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The archive's bytes do not hash to its id.
    #[error("archive {id} is corrupt on disk: its bytes hash to {actual}")]
    Corrupt {
        /// The archive's id.
        id: ContentId,
        /// What its bytes hash to.
        actual: ContentId,
    },
    /// The archive was removed (by `gc`) while it was being unpacked.
    #[error("archive {0} was removed while it was being unpacked")]
    Removed(ContentId),
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// `/`-separated path relative to the tree.
    path: String,
    /// What it is.
    kind: Kind,
    /// The archive's mode bits (the tree's files have the write bits cleared).
    mode: u32,
    /// Files: size in bytes.
    #[serde(default)]
    size: u64,
    /// Files: modification time, nanoseconds since the epoch, as the tree holds it.
    #[serde(default)]
    mtime_ns: i128,
    /// Symlinks: what they point to.
    #[serde(default)]
    target: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Dir,
    File,
    Symlink,
}

/// The index of a tree.
#[derive(Debug, Serialize, Deserialize)]
struct Index {
    /// Format version.
    version: u32,
    /// The archive's id.
    content_id: String,
    /// Entries, each directory before what it holds.
    entries: Vec<Entry>,
}

const INDEX_VERSION: u32 = 1;
/// Largest index read (an archive of the most entries allowed has an index of a few MiB).
const INDEX_MAX: u64 = 256 * 1024 * 1024;
const TMP: &str = ".tmp-";

/// The unpacked trees of a blob store (see the module documentation).
#[derive(Debug, Clone)]
pub struct Unpacked {
    root: PathBuf,
}

/// A checked tree, ready to be placed.
#[derive(Debug)]
pub struct Tree {
    dir: PathBuf,
    entries: Vec<Entry>,
}

fn mode_of(meta: &fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o7777
    }
    #[cfg(not(unix))]
    {
        if meta.permissions().readonly() {
            0o444
        } else {
            0o644
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let mut p = fs::metadata(path)?.permissions();
        p.set_readonly(mode & 0o222 == 0);
        fs::set_permissions(path, p)
    }
}

fn mtime_ns(meta: &fs::Metadata) -> i128 {
    match meta.modified().map(|t| t.duration_since(UNIX_EPOCH)) {
        Ok(Ok(d)) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Ok(Err(before)) => -i128::try_from(before.duration().as_nanos()).unwrap_or(i128::MAX),
        Err(_) => 0,
    }
}

/// Reads through, hashing what it reads.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl Unpacked {
    /// The trees kept under `root` (the blob store's `unpacked` directory).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn dir(&self, id: &ContentId) -> PathBuf {
        self.root.join(id.to_hex())
    }

    fn index_path(&self, id: &ContentId) -> PathBuf {
        self.root.join(format!("{}.index", id.to_hex()))
    }

    /// Whether a tree of `id` is kept (its index exists; not checked).
    pub fn contains(&self, id: &ContentId) -> bool {
        self.index_path(id).is_file()
    }

    /// The tree of `id`, if one is kept and still matches its index. One that does not is
    /// removed (and `None` returned), so the caller unpacks the archive again.
    pub fn get(&self, id: &ContentId) -> Option<Tree> {
        let index_path = self.index_path(id);
        let index = match read_index(&index_path) {
            Ok(Some(i)) => i,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(id = %id, error = %e, "unreadable index of an unpacked archive; unpacking it again");
                self.remove(id);
                return None;
            }
        };
        let dir = self.dir(id);
        if index.version != INDEX_VERSION
            || index.content_id != id.to_string()
            || !index.entries.iter().all(stays_inside)
            || !well_formed(&index.entries)
        {
            tracing::warn!(id = %id, "the index of an unpacked archive is not one this node wrote; unpacking it again");
            self.remove(id);
            return None;
        }
        if let Some(why) = index.entries.iter().find_map(|e| differs(&dir, e)) {
            tracing::warn!(id = %id, %why, "the unpacked copy of an archive changed; unpacking it again");
            self.remove(id);
            return None;
        }
        Some(Tree {
            dir,
            entries: index.entries,
        })
    }

    /// Unpack the archive at `archive` (the blob of `id`) into a tree, checking that its
    /// bytes hash to `id`. `still_held` is asked once the tree is in place: when it says the
    /// archive is gone (removed meanwhile), the tree is removed too.
    pub fn unpack(
        &self,
        id: &ContentId,
        archive: &Path,
        limits: &ExtractLimits,
        still_held: impl Fn() -> bool,
    ) -> Result<Tree, Error> {
        fs::create_dir_all(&self.root).map_err(io_at(&self.root))?;
        // A name of its own, even for two unpackings of one archive at once.
        let tmp = tempfile::Builder::new()
            .prefix(TMP)
            .tempdir_in(&self.root)
            .map_err(io_at(&self.root))?
            .keep();
        let result = self.unpack_via(id, archive, limits, &tmp);
        if tmp.exists() {
            let _ = remove_all(&tmp);
        }
        let tree = result?;
        if !still_held() {
            self.remove(id);
            return Err(Error::Removed(*id));
        }
        Ok(tree)
    }

    fn unpack_via(
        &self,
        id: &ContentId,
        archive: &Path,
        limits: &ExtractLimits,
        tmp: &Path,
    ) -> Result<Tree, Error> {
        let file = fs::File::open(archive).map_err(io_at(archive))?;
        let mut reader = Hashing {
            inner: io::BufReader::with_capacity(256 * 1024, file),
            hasher: blake3::Hasher::new(),
        };
        peerpack_core::archive::extract(&mut reader, tmp, limits)?;
        io::copy(&mut reader, &mut io::sink()).map_err(io_at(archive))?;
        let actual = ContentId::from_bytes(*reader.hasher.finalize().as_bytes());
        if actual != *id {
            return Err(Error::Corrupt { id: *id, actual });
        }
        let mut entries = Vec::new();
        walk(tmp, "", &mut entries)?;
        // Everything on disk before the index says the tree is whole.
        sync_fs(tmp).map_err(io_at(tmp))?;
        let dir = self.dir(id);
        match fs::rename(tmp, &dir) {
            Ok(()) => {}
            // Another install unpacked it meanwhile: use that one.
            Err(_) if dir.is_dir() => {
                return self
                    .get(id)
                    .ok_or_else(|| io_at(&dir)(io::Error::other("unpacked twice at once")));
            }
            Err(e) => return Err(io_at(&dir)(e)),
        }
        let index = Index {
            version: INDEX_VERSION,
            content_id: id.to_string(),
            entries,
        };
        let bytes = serde_json::to_vec(&index).map_err(|e| io_at(&dir)(io::Error::other(e)))?;
        let index_path = self.index_path(id);
        peerpack_core::fs::atomic_write(&index_path, &bytes).map_err(io_at(&index_path))?;
        Ok(Tree {
            dir,
            entries: index.entries,
        })
    }

    /// Remove the tree of `id` and its index (nothing if there is none).
    pub fn remove(&self, id: &ContentId) {
        let _ = fs::remove_file(self.index_path(id));
        let dir = self.dir(id);
        if dir.exists()
            && let Err(e) = remove_all(&dir)
        {
            tracing::warn!(path = %dir.display(), error = %e, "cannot remove an unpacked archive");
        }
    }

    /// Remove what a crash left (unpacking under way, trees without an index) and the trees of
    /// archives `held` no longer names. Answers how many trees are kept.
    pub fn sweep(&self, held: impl Fn(&ContentId) -> bool) -> usize {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return 0;
        };
        let mut kept = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let hex = name.strip_suffix(".index").unwrap_or(&name);
            let id: Option<ContentId> = format!("{}{hex}", peerpack_core::content_id::PREFIX)
                .parse()
                .ok();
            match id {
                Some(id) if held(&id) && self.contains(&id) && self.dir(&id).is_dir() => {
                    kept += usize::from(!name.ends_with(".index"));
                }
                Some(id) => self.remove(&id),
                None if name.starts_with(TMP) => {
                    let _ = remove_all(&path);
                }
                None => {}
            }
        }
        kept
    }
}

fn read_index(path: &Path) -> Result<Option<Index>, io::Error> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(INDEX_MAX).read_to_end(&mut bytes)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(io::Error::other)
}

/// Whether an index entry stays inside its tree: a relative path of plain components, and a
/// symlink that resolves inside (what extraction allowed).
fn stays_inside(e: &Entry) -> bool {
    let plain = !e.path.is_empty()
        && e.path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\\'));
    plain
        && (e.kind != Kind::Symlink
            || peerpack_core::archive::resolve_link(&e.path, &e.target).is_some())
}

/// Whether every entry's parent is a directory entry listed before it, and no path is listed
/// twice: so placing the entries in order only ever writes through directories it created,
/// never beneath a symlink, whatever the index says.
fn well_formed(entries: &[Entry]) -> bool {
    let mut dirs = std::collections::HashSet::new();
    let mut seen = std::collections::HashSet::new();
    for e in entries {
        if !seen.insert(e.path.as_str()) {
            return false;
        }
        if let Some((parent, _)) = e.path.rsplit_once('/')
            && !dirs.contains(parent)
        {
            return false;
        }
        if e.kind == Kind::Dir {
            dirs.insert(e.path.as_str());
        }
    }
    true
}

/// How the entry `e` of the tree in `dir` differs from its index, if it does.
fn differs(dir: &Path, e: &Entry) -> Option<String> {
    let path = dir.join(&e.path);
    let Ok(meta) = fs::symlink_metadata(&path) else {
        return Some(format!("{} is missing", e.path));
    };
    let t = meta.file_type();
    match e.kind {
        Kind::Dir if t.is_dir() => None,
        Kind::File if t.is_file() => {
            if meta.len() != e.size {
                Some(format!("{} changed size", e.path))
            } else if mtime_ns(&meta) != e.mtime_ns {
                Some(format!("{} was modified", e.path))
            } else if mode_of(&meta) & 0o222 != 0 {
                Some(format!("{} was made writable", e.path))
            } else {
                None
            }
        }
        Kind::Symlink if t.is_symlink() => {
            let target = fs::read_link(&path).ok()?;
            (target.to_string_lossy() != e.target.as_str())
                .then(|| format!("{} points elsewhere", e.path))
        }
        _ => Some(format!("{} is no longer a {:?}", e.path, e.kind)),
    }
}

/// Record the tree under `dir` (at `rel`) in `out`, each directory before its content, and make
/// its files read-only.
fn walk(dir: &Path, rel: &str, out: &mut Vec<Entry>) -> Result<(), Error> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(io_at(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_at(dir))?;
    names.sort();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let path = dir.join(&name);
        let rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let meta = fs::symlink_metadata(&path).map_err(io_at(&path))?;
        let t = meta.file_type();
        if t.is_dir() {
            out.push(Entry {
                path: rel.clone(),
                kind: Kind::Dir,
                mode: mode_of(&meta),
                size: 0,
                mtime_ns: 0,
                target: String::new(),
            });
            walk(&path, &rel, out)?;
        } else if t.is_symlink() {
            let target = fs::read_link(&path).map_err(io_at(&path))?;
            out.push(Entry {
                path: rel,
                kind: Kind::Symlink,
                mode: 0o777,
                size: 0,
                mtime_ns: 0,
                target: target.to_string_lossy().into_owned(),
            });
        } else {
            let mode = mode_of(&meta);
            set_mode(&path, mode & !0o222).map_err(io_at(&path))?;
            let meta = fs::symlink_metadata(&path).map_err(io_at(&path))?;
            out.push(Entry {
                path: rel,
                kind: Kind::File,
                mode,
                size: meta.len(),
                mtime_ns: mtime_ns(&meta),
                target: String::new(),
            });
        }
    }
    Ok(())
}

/// Flush the file system holding `path` (one call for every file just written).
fn sync_fs(path: &Path) -> io::Result<()> {
    let dir = fs::File::open(path)?;
    #[cfg(target_os = "linux")]
    {
        rustix::fs::syncfs(&dir)?;
    }
    #[cfg(not(target_os = "linux"))]
    {
        dir.sync_all()?;
    }
    Ok(())
}

/// Remove a tree whose files may be read-only (only the directories' modes matter, and they
/// stay writable).
fn remove_all(path: &Path) -> io::Result<()> {
    fs::remove_dir_all(path)
}

impl Tree {
    /// Build `dest` (which must not exist) from this tree, placing files as `mode` says.
    /// Answers how the files were placed. On error `dest` may hold part of the tree; the
    /// caller removes it.
    pub fn place(&self, dest: &Path, mode: LinkMode) -> io::Result<Placed> {
        fs::create_dir(dest)?;
        let mut how = match mode {
            LinkMode::Hardlink => Placed::Hardlink,
            LinkMode::Copy => Placed::Copy,
            LinkMode::Auto | LinkMode::Extract => Placed::Reflink,
        };
        let mut dirs = Vec::new();
        let mut links = Vec::new();
        for e in &self.entries {
            let src = self.dir.join(&e.path);
            let dst = dest.join(&e.path);
            match e.kind {
                Kind::Dir => {
                    fs::create_dir(&dst)?;
                    dirs.push((dst, e.mode));
                }
                // Symlinks last, once nothing more is written into the tree.
                Kind::Symlink => links.push((&e.target, dst)),
                Kind::File => {
                    how = place_file(&src, &dst, how)?;
                    if how != Placed::Hardlink {
                        set_mode(&dst, e.mode)?;
                    }
                }
            }
        }
        for (target, link) in links {
            symlink(target, &link)?;
        }
        // Directory modes last: a read-only directory must be filled first.
        for (dir, mode) in dirs.iter().rev() {
            set_mode(dir, *mode)?;
        }
        Ok(how)
    }

    /// Bytes of the files in this tree.
    pub fn bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }
}

/// Place one file as `how` says, falling back (hard link → reflink → copy) where the file
/// system cannot; answers how it was placed, which the next files start from.
fn place_file(src: &Path, dst: &Path, how: Placed) -> io::Result<Placed> {
    if how == Placed::Hardlink {
        match fs::hard_link(src, dst) {
            Ok(()) => return Ok(Placed::Hardlink),
            Err(e) => {
                tracing::debug!(error = %e, "cannot hard-link from the unpacked cache; copying");
            }
        }
    }
    if matches!(how, Placed::Hardlink | Placed::Reflink) {
        match reflink_copy::reflink(src, dst) {
            Ok(()) => return Ok(Placed::Reflink),
            Err(e) => {
                let _ = fs::remove_file(dst);
                tracing::debug!(error = %e, "the file system cannot clone files; copying");
            }
        }
    }
    fs::copy(src, dst)?;
    Ok(Placed::Copy)
}

fn symlink(target: &str, link: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, link)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::symlink_file(target, link)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::BlobStore;
    #[cfg(unix)]
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// A package with a nested file, an executable and a symlink, stored as a blob.
    fn stored(blobs: &BlobStore) -> ContentId {
        let src = tempfile::tempdir().unwrap();
        let p = src.path();
        fs::write(
            p.join("peerpack.toml"),
            "[package]\nname = \"t\"\nversion = \"1.0.0\"\ndescription = \"d\"\nlicense = \"MIT\"\nauthors = [\"a\"]\n",
        )
        .unwrap();
        fs::create_dir_all(p.join("src/deep")).unwrap();
        fs::write(p.join("src/deep/main.rs"), "fn main() {}\n").unwrap();
        fs::write(p.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        #[cfg(unix)]
        {
            set_mode(&p.join("run.sh"), 0o755).unwrap();
            std::os::unix::fs::symlink("src/deep/main.rs", p.join("link.rs")).unwrap();
        }
        let (bytes, _) = peerpack_core::archive::pack(p).unwrap();
        blobs.put(&bytes).unwrap()
    }

    fn unpack(blobs: &BlobStore, id: &ContentId) -> Result<Tree, Error> {
        blobs
            .unpacked()
            .unpack(id, &blobs.path(id), &ExtractLimits::default(), || {
                blobs.contains(id)
            })
    }

    #[test]
    fn a_tree_is_placed_by_copy_with_the_archives_modes_or_by_read_only_hard_links() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(&dir.path().join("blobs")).unwrap();
        let id = stored(&blobs);
        unpack(&blobs, &id).unwrap();
        let tree = blobs.unpacked().get(&id).expect("the tree is kept");

        let copied = dir.path().join("copied");
        let how = tree.place(&copied, LinkMode::Auto).unwrap();
        // ext4 and tmpfs cannot clone: auto copies there.
        assert!(matches!(how, Placed::Copy | Placed::Reflink), "{how:?}");
        assert_eq!(
            fs::read_to_string(copied.join("src/deep/main.rs")).unwrap(),
            "fn main() {}\n"
        );
        #[cfg(unix)]
        {
            let mode = |p: &str| fs::metadata(copied.join(p)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode("run.sh"), 0o755);
            assert_eq!(
                mode("src/deep/main.rs") & 0o200,
                0o200,
                "the user's own files"
            );
            assert_eq!(
                fs::read_link(copied.join("link.rs")).unwrap(),
                Path::new("src/deep/main.rs")
            );
        }
        // Editing a copy leaves the tree as it was.
        fs::write(copied.join("src/deep/main.rs"), "edited").unwrap();
        assert!(blobs.unpacked().get(&id).is_some());

        let linked = dir.path().join("linked");
        assert_eq!(
            tree.place(&linked, LinkMode::Hardlink).unwrap(),
            Placed::Hardlink
        );
        #[cfg(unix)]
        {
            let meta = fs::metadata(linked.join("src/deep/main.rs")).unwrap();
            assert!(meta.permissions().readonly());
            assert!(meta.nlink() >= 2);
        }
        assert!(
            blobs.unpacked().get(&id).is_some(),
            "links leave the tree whole"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_tree_edited_through_a_hard_link_is_never_placed_again() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(&dir.path().join("blobs")).unwrap();
        let id = stored(&blobs);
        let tree = unpack(&blobs, &id).unwrap();
        let linked = dir.path().join("linked");
        tree.place(&linked, LinkMode::Hardlink).unwrap();
        // The user makes the installed file writable and edits it: the shared file changes.
        let f = linked.join("src/deep/main.rs");
        set_mode(&f, 0o644).unwrap();
        fs::write(&f, "fn main() { evil() }\n").unwrap();
        assert!(
            blobs.unpacked().get(&id).is_none(),
            "the changed tree is refused"
        );
        assert!(!blobs.unpacked().contains(&id), "and removed");
        assert!(!dir.path().join("blobs/unpacked").join(id.to_hex()).exists());
        // Unpacked again, it is the archive's.
        let tree = unpack(&blobs, &id).unwrap();
        let again = dir.path().join("again");
        tree.place(&again, LinkMode::Copy).unwrap();
        assert_eq!(
            fs::read_to_string(again.join("src/deep/main.rs")).unwrap(),
            "fn main() {}\n"
        );
        // A file of the tree made writable is refused even with its bytes unchanged.
        let cached = dir
            .path()
            .join("blobs/unpacked")
            .join(id.to_hex())
            .join("run.sh");
        set_mode(&cached, 0o755).unwrap();
        assert!(blobs.unpacked().get(&id).is_none());
    }

    #[cfg(unix)]
    #[test]
    fn an_index_naming_paths_outside_its_tree_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(&dir.path().join("blobs")).unwrap();
        let id = stored(&blobs);
        unpack(&blobs, &id).unwrap();
        let index = dir
            .path()
            .join("blobs/unpacked")
            .join(format!("{}.index", id.to_hex()));
        let text = fs::read_to_string(&index).unwrap();
        // A file listed beneath a symlink (`link.rs/x`): placing it would write through it.
        let beneath = text.replace("\"path\":\"run.sh\"", "\"path\":\"link.rs/run.sh\"");
        for hostile in [
            beneath,
            text.replace("\"path\":\"run.sh\"", "\"path\":\"../../run.sh\""),
            text.replace(
                "\"target\":\"src/deep/main.rs\"",
                "\"target\":\"../../../etc/passwd\"",
            ),
        ] {
            assert_ne!(hostile, text);
            if !blobs.unpacked().contains(&id) {
                unpack(&blobs, &id).unwrap();
            }
            fs::write(&index, &hostile).unwrap();
            assert!(blobs.unpacked().get(&id).is_none());
            assert!(!blobs.unpacked().contains(&id), "and the tree is removed");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_same_size_edit_of_the_tree_is_noticed_by_its_time() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(&dir.path().join("blobs")).unwrap();
        let id = stored(&blobs);
        unpack(&blobs, &id).unwrap();
        let f = dir
            .path()
            .join("blobs/unpacked")
            .join(id.to_hex())
            .join("src/deep/main.rs");
        let before = fs::read(&f).unwrap();
        // Let the clock move past the file system's timestamp granularity.
        std::thread::sleep(std::time::Duration::from_millis(20));
        set_mode(&f, 0o644).unwrap();
        fs::write(&f, vec![b'x'; before.len()]).unwrap();
        set_mode(&f, 0o444).unwrap();
        assert_eq!(fs::metadata(&f).unwrap().len(), before.len() as u64);
        assert!(blobs.unpacked().get(&id).is_none());
    }

    #[test]
    fn an_archive_rotten_on_disk_is_not_unpacked() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(&dir.path().join("blobs")).unwrap();
        let id = stored(&blobs);
        let path = blobs.path(&id);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        #[cfg(unix)]
        set_mode(&path, 0o644).unwrap();
        fs::write(&path, &bytes).unwrap();
        let err = unpack(&blobs, &id).unwrap_err();
        assert!(
            matches!(err, Error::Corrupt { .. } | Error::Extract(_)),
            "{err}"
        );
        assert!(!blobs.unpacked().contains(&id));
        let left: Vec<_> = fs::read_dir(dir.path().join("blobs/unpacked"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "nothing left behind: {left:?}");
    }

    #[test]
    fn what_a_crash_or_gc_leaves_is_swept_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("blobs");
        let blobs = BlobStore::open(&root).unwrap();
        let id = stored(&blobs);
        unpack(&blobs, &id).unwrap();
        let other = stored_other(&blobs);
        unpack(&blobs, &other).unwrap();
        // A crash mid-unpack, and a tree whose index was never written.
        let u = root.join("unpacked");
        fs::create_dir_all(u.join(".tmp-1-2/x")).unwrap();
        fs::remove_file(u.join(format!("{}.index", other.to_hex()))).unwrap();
        drop(blobs);
        let blobs = BlobStore::open(&root).unwrap();
        assert!(blobs.unpacked().get(&id).is_some());
        assert!(!u.join(".tmp-1-2").exists());
        assert!(!u.join(other.to_hex()).exists());
        // gc removes a blob: its tree goes with it.
        blobs.remove(&id).unwrap();
        assert!(!u.join(id.to_hex()).exists());
        assert!(!blobs.unpacked().contains(&id));
    }

    fn stored_other(blobs: &BlobStore) -> ContentId {
        let src = tempfile::tempdir().unwrap();
        fs::write(
            src.path().join("peerpack.toml"),
            "[package]\nname = \"u\"\nversion = \"1.0.0\"\ndescription = \"d\"\nlicense = \"MIT\"\nauthors = [\"a\"]\n",
        )
        .unwrap();
        let (bytes, _) = peerpack_core::archive::pack(src.path()).unwrap();
        blobs.put(&bytes).unwrap()
    }

    #[test]
    fn an_archive_removed_while_it_was_unpacked_leaves_no_tree() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(&dir.path().join("blobs")).unwrap();
        let id = stored(&blobs);
        let err = blobs
            .unpacked()
            .unpack(&id, &blobs.path(&id), &ExtractLimits::default(), || false)
            .unwrap_err();
        assert!(matches!(err, Error::Removed(_)), "{err}");
        assert!(!blobs.unpacked().contains(&id));
        assert!(!dir.path().join("blobs/unpacked").join(id.to_hex()).exists());
    }
}
