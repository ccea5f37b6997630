//! Putting an installed tree in its place: extract into a staging directory beside the
//! target, mark it as peerpack's (`.peerpack-install`), swap it in with renames, and on the
//! next install put right what a killed process left behind.

use std::path::Path;

use peerpack_core::{ContentId, PackageName, Version};
use peerpack_store::unpacked::{LinkMode, Placed};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The file peerpack writes into every tree it installs, `DIR/NAME/.peerpack-install`
/// (docs/PROTOCOL.md §8.6). Packing leaves it out.
pub const MARKER: &str = peerpack_core::archive::INSTALL_MARKER;

/// Largest marker read; a real one is a few hundred bytes.
const MARKER_MAX: u64 = 64 * 1024;

/// What [`MARKER`] holds (TOML): which package a tree is, and when peerpack installed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// Package name.
    pub name: String,
    /// Version installed.
    pub version: String,
    /// The archive's content id.
    pub content_id: String,
    /// When, in seconds since the Unix epoch.
    pub installed_at: u64,
}

impl Marker {
    pub(super) fn new(name: &PackageName, version: &Version, id: &ContentId) -> Self {
        Self {
            name: name.to_string(),
            version: version.to_string(),
            content_id: id.to_string(),
            installed_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    /// The marker of the tree `dir`: `None` when `dir` is not a directory, or its marker is
    /// missing, not a regular file, too large or not valid.
    pub fn read(dir: &Path) -> Option<Self> {
        use std::io::Read;
        if !std::fs::symlink_metadata(dir).ok()?.is_dir() {
            return None;
        }
        let path = dir.join(MARKER);
        if !std::fs::symlink_metadata(&path).ok()?.is_file() {
            return None;
        }
        let mut text = String::new();
        std::fs::File::open(&path)
            .ok()?
            .take(MARKER_MAX)
            .read_to_string(&mut text)
            .ok()?;
        toml::from_str(&text).ok()
    }

    /// Write the marker into `dir`, replacing whatever is at its path (a package may ship a
    /// file of that name; it is never trusted).
    fn write(&self, dir: &Path) -> std::io::Result<()> {
        let path = dir.join(MARKER);
        if std::fs::symlink_metadata(&path).is_ok() {
            remove_tree(&path)?;
        }
        let body = toml::to_string(self).map_err(std::io::Error::other)?;
        let text = format!(
            "# Written by peerpack install: this tree is the package below. `peerpack install`\n\
             # replaces a tree only if this file names the package being installed (or with\n\
             # --force).\n{body}"
        );
        peerpack_core::fs::atomic_write(&path, text.as_bytes())
    }
}

/// Refuse to replace `target` with package `name` unless it is missing or a tree peerpack
/// installed for `name` (its [`MARKER`] names it).
pub(super) fn check_replaceable(target: &Path, name: &str) -> Result<(), Error> {
    let meta = match std::fs::symlink_metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::Conflict(format!(
                "cannot check {}: {e}",
                target.display()
            )));
        }
    };
    let what = if !meta.is_dir() {
        "is not a directory peerpack installed".to_owned()
    } else {
        match Marker::read(target) {
            Some(m) if m.name == name => return Ok(()),
            Some(m) => format!("holds {} {}, not {name}", m.name, m.version),
            None => format!("was not installed by peerpack (it has no valid {MARKER})"),
        }
    };
    Err(Error::Conflict(format!(
        "{} already exists and {what}; refusing to replace it. Move it away, install to \
         another directory with --to, or run `peerpack install --force` to replace it",
        target.display()
    )))
}

/// Marks in the names of the trees `place` keeps beside `DIR/NAME` while it swaps, each
/// followed by `PID-NANOS` of the installing process: `.NAME.peerpack-new-PID-NANOS` (the
/// new tree, being extracted), `.NAME.peerpack-old-PID-NANOS` (the tree `DIR/NAME` held,
/// moved aside until the new one is in place) and `.NAME.peerpack-del-PID-NANOS` (that old
/// tree once the new one is in place, being removed). No package name holds a dot, so no
/// mark can be part of NAME.
pub const STAGED: &str = ".peerpack-new-";
/// See [`STAGED`].
pub const REPLACED: &str = ".peerpack-old-";
/// See [`STAGED`].
pub const DISCARDED: &str = ".peerpack-del-";

/// `PID-NANOS` of this process now: what follows a mark (see [`STAGED`]).
pub(super) fn stamp() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

/// `.NAME{mark}{stamp}` beside `target` (`DIR/NAME`): a name [`sweep_leftovers`] knows.
pub(super) fn beside(target: &Path, mark: &str, stamp: &str) -> std::path::PathBuf {
    let parent = target.parent().unwrap_or(Path::new("/"));
    let base = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent.join(format!(".{base}{mark}{stamp}"))
}

/// Remove a directory tree, or a file or symlink (never what a symlink points to).
pub(super) fn remove_tree(path: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(path)?.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

/// Put the install directory `dir` right after a node was killed mid-install: new trees that
/// never got into place are removed; an old tree moved aside whose `DIR/NAME` is missing is
/// moved back (the new one never got in); one whose `DIR/NAME` is a tree peerpack installed is
/// removed (the new one did). Only trees of a process that no longer runs are touched, so a
/// concurrent install is never disturbed.
pub(super) fn sweep_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some((name, mark, pid)) = file_name.to_str().and_then(parse_leftover) else {
            continue;
        };
        if pid == me || Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let path = entry.path();
        if mark == REPLACED {
            let target = dir.join(name);
            match std::fs::symlink_metadata(&target) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    match std::fs::rename(&path, &target) {
                        Ok(()) => tracing::info!(
                            path = %target.display(),
                            "restored the tree an interrupted install had moved aside"
                        ),
                        Err(e) => tracing::warn!(
                            path = %path.display(), error = %e,
                            "cannot restore the tree an interrupted install moved aside"
                        ),
                    }
                    continue;
                }
                _ if Marker::read(&target).is_none() => {
                    tracing::warn!(
                        path = %path.display(), target = %target.display(),
                        "kept the tree an interrupted install moved aside: its place holds a tree peerpack did not install"
                    );
                    continue;
                }
                _ => {}
            }
        }
        match remove_tree(&path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "removed what an interrupted install left")
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove what an interrupted install left")
            }
        }
    }
}

/// `.NAME{mark}PID-NANOS` -> (NAME, mark, PID).
fn parse_leftover(file_name: &str) -> Option<(&str, &'static str, u32)> {
    let rest = file_name.strip_prefix('.')?;
    let (name, mark, stamp) = [STAGED, REPLACED, DISCARDED]
        .into_iter()
        .find_map(|mark| rest.split_once(mark).map(|(n, s)| (n, mark, s)))?;
    if name.is_empty() {
        return None;
    }
    let (pid, _) = stamp.split_once('-')?;
    Some((name, mark, pid.parse().ok()?))
}

/// How [`place`] wrote a tree: unpacked from the archive, or placed from the unpacked cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Unpacked from the archive.
    Unpacked,
    /// From the archive's unpacked tree ([`peerpack_store::unpacked`]).
    FromCache(Placed),
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unpacked => f.write_str("unpacked"),
            Self::FromCache(how) => how.fmt(f),
        }
    }
}

/// Write the tree of archive `id` into `staging`: from its unpacked tree when the node keeps
/// one that is still whole (and `link` allows it), else by unpacking the archive, checked
/// first when `verify`.
fn write_tree(
    blobs: &peerpack_store::BlobStore,
    id: &ContentId,
    staging: &Path,
    label: &str,
    verify: bool,
    link: LinkMode,
) -> Result<Written, Error> {
    if link != LinkMode::Extract
        && let Some(tree) = blobs.unpacked().get(id)
    {
        match tree.place(staging, link) {
            Ok(how) => return Ok(Written::FromCache(how)),
            Err(e) => {
                tracing::warn!(%id, error = %e, "cannot place from the unpacked cache; unpacking the archive");
                if std::fs::symlink_metadata(staging).is_ok() {
                    let _ = remove_tree(staging);
                }
            }
        }
    }
    if verify {
        blobs
            .verify(id)
            .map_err(|e| Error::Internal(format!("{label}: {e}")))?;
    }
    let file = std::fs::File::open(blobs.path(id))
        .map_err(|e| Error::Internal(format!("{label}: {e}")))?;
    peerpack_core::archive::extract(
        std::io::BufReader::new(file),
        staging,
        &peerpack_core::archive::ExtractLimits::default(),
    )
    .map_err(|e| {
        let text = format!("{label} ({id}) was not installed: {e}");
        if e.is_unsafe_archive() {
            Error::UnsafeArchive(text)
        } else {
            Error::Conflict(text)
        }
    })?;
    Ok(Written::Unpacked)
}

/// Keep the archive `id` unpacked beside its blob, for the next install of it (see
/// [`peerpack_store::unpacked`]). Nothing when it already is.
pub(super) fn unpack_for_later(blobs: &peerpack_store::BlobStore, id: &ContentId) {
    let cache = blobs.unpacked();
    if cache.contains(id) {
        return;
    }
    let unpacked = cache.unpack(
        id,
        &blobs.path(id),
        &peerpack_core::archive::ExtractLimits::default(),
        || blobs.contains(id),
    );
    match unpacked {
        Ok(tree) => tracing::debug!(%id, bytes = tree.bytes(), "kept the archive unpacked"),
        Err(e) => tracing::warn!(%id, error = %e, "could not keep the archive unpacked"),
    }
}

/// Write the archive `id`'s tree into `target` with its `marker` (see [`write_tree`]),
/// replacing what is there only once the new tree is complete, and only a tree peerpack
/// installed for the same package unless `force`. On any error the target is as it was. A
/// crash at any step leaves what [`sweep_leftovers`] puts right: the old tree moves aside,
/// the new one moves in, and only then is the old one removed.
#[allow(clippy::too_many_arguments)]
pub(super) fn place(
    blobs: &peerpack_store::BlobStore,
    id: &ContentId,
    target: &Path,
    label: &str,
    marker: &Marker,
    verify: bool,
    force: bool,
    link: LinkMode,
) -> Result<Written, Error> {
    let parent = target.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent)
        .map_err(|e| Error::BadRequest(format!("cannot create {}: {e}", parent.display())))?;
    let stamp = stamp();
    let staging = beside(target, STAGED, &stamp);
    let written = write_tree(blobs, id, &staging, label, verify, link)?;
    let discard_staging = |e: Error| {
        let _ = std::fs::remove_dir_all(&staging);
        e
    };
    marker.write(&staging).map_err(|e| {
        discard_staging(Error::Internal(format!(
            "cannot write {}: {e}",
            staging.join(MARKER).display()
        )))
    })?;
    if !force {
        check_replaceable(target, &marker.name).map_err(discard_staging)?;
    }
    let old = beside(target, REPLACED, &stamp);
    let had_old = std::fs::symlink_metadata(target).is_ok();
    if had_old {
        std::fs::rename(target, &old).map_err(|e| {
            discard_staging(Error::Internal(format!(
                "cannot move {} aside: {e}",
                target.display()
            )))
        })?;
    }
    if let Err(e) = std::fs::rename(&staging, target) {
        let _ = std::fs::remove_dir_all(&staging);
        if had_old {
            let _ = std::fs::rename(&old, target);
        }
        return Err(Error::Internal(format!(
            "cannot move the new tree to {}: {e}",
            target.display()
        )));
    }
    if had_old {
        // Renamed first, so a tree named `old` is always whole: a crash mid-removal leaves a
        // tree the sweep only ever removes.
        let doomed = beside(target, DISCARDED, &stamp);
        let removed = std::fs::rename(&old, &doomed).and_then(|()| remove_tree(&doomed));
        if let Err(e) = removed {
            tracing::warn!(path = %old.display(), error = %e, "could not remove the replaced install");
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::{Marker, sweep_leftovers};

    fn marker(name: &str) -> Marker {
        Marker {
            name: name.to_owned(),
            version: "1.0.0".to_owned(),
            content_id: format!("blake3:{}", "0".repeat(64)),
            installed_at: 1,
        }
    }

    #[test]
    fn leftovers_of_a_dead_process_are_swept_restored_or_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        // A pid above the kernel's pid_max cannot be running.
        let dead = 4_194_304u32 + 7;
        let me = std::process::id();
        for name in [
            format!(".pack.peerpack-new-{dead}-1"),
            format!(".pack.peerpack-old-{dead}-2"),
            format!(".pack.peerpack-new-{me}-3"),
            format!(".other.peerpack-old-{dead}-4"),
            format!(".third.peerpack-old-{dead}-5"),
            format!(".pack.peerpack-del-{dead}-6"),
            format!(".peerpack-old-{dead}-7"),
            ".pack.peerpack-new-x-5".to_owned(),
            ".hidden".to_owned(),
            "pack".to_owned(),
            "third".to_owned(),
        ] {
            std::fs::create_dir_all(p.join(name).join("sub")).unwrap();
        }
        std::fs::write(
            p.join(format!(".other.peerpack-old-{dead}-4/sub/f")),
            "mine",
        )
        .unwrap();
        marker("pack").write(&p.join("pack")).unwrap();
        sweep_leftovers(p);
        let mut left: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut kept = vec![
            // `pack` holds peerpack's new tree: its old one goes. `other` is missing: its old
            // tree comes back. `third` is not peerpack's: its old tree stays for the user.
            ".hidden".to_owned(),
            ".pack.peerpack-new-x-5".to_owned(),
            format!(".pack.peerpack-new-{me}-3"),
            format!(".peerpack-old-{dead}-7"),
            format!(".third.peerpack-old-{dead}-5"),
            "other".to_owned(),
            "pack".to_owned(),
            "third".to_owned(),
        ];
        kept.sort();
        assert_eq!(left, kept);
        assert_eq!(
            std::fs::read_to_string(p.join("other/sub/f")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn the_marker_round_trips_and_a_bad_one_is_no_marker() {
        let dir = tempfile::tempdir().unwrap();
        let m = marker("rust-cli");
        m.write(dir.path()).unwrap();
        assert_eq!(Marker::read(dir.path()), Some(m));
        std::fs::write(dir.path().join(super::MARKER), "name = 3").unwrap();
        assert_eq!(Marker::read(dir.path()), None);
        assert_eq!(Marker::read(&dir.path().join(super::MARKER)), None);
    }
}
