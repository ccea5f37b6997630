//! Checking installed trees against their archives (`verify`), and removing packages the
//! lock no longer needs (`remove`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use peerpack_api::lockfile::{FILE_NAME, root_name};
use peerpack_api::{
    Drift, Lockfile, RemoveReport, RemoveRequest, Uninstalled, Verified, VerifyReport,
    VerifyRequest,
};
use peerpack_core::{ContentId, PackageName};

use super::place::{DISCARDED, MARKER, Marker, STAGED, beside, remove_tree, stamp};
use crate::context::Context;
use crate::download;
use crate::error::Error;

/// What differs between the tree `target` and the archive `id`: the archive is extracted
/// beside the target (under a name the leftover sweep removes after a crash), the two trees
/// are compared entry by entry, and the extraction is removed again. peerpack's own marker is
/// not part of the package and is left out.
pub(super) fn compare(
    blobs: &peerpack_store::BlobStore,
    id: &ContentId,
    target: &Path,
    label: &str,
) -> Result<Vec<Drift>, Error> {
    let expected = beside(target, STAGED, &stamp());
    let file = std::fs::File::open(blobs.path(id))
        .map_err(|e| Error::Internal(format!("{label}: cannot open its archive: {e}")))?;
    let extracted = peerpack_core::archive::extract(
        std::io::BufReader::new(file),
        &expected,
        &peerpack_core::archive::ExtractLimits::default(),
    )
    .map_err(|e| Error::Conflict(format!("{label} ({id}): cannot read its archive: {e}")));
    let result = extracted.and_then(|_| {
        let mut drift = Vec::new();
        diff(&expected, target, "", &mut drift)
            .map_err(|e| Error::Internal(format!("cannot compare {}: {e}", target.display())))?;
        drift.sort();
        Ok(drift)
    });
    let _ = std::fs::remove_dir_all(&expected);
    result
}

/// One entry of a tree, as compared.
#[derive(PartialEq, Eq)]
enum Entry {
    Dir,
    File { executable: bool },
    Link(std::path::PathBuf),
}

fn entries(dir: &Path) -> std::io::Result<BTreeMap<String, Entry>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let meta = std::fs::symlink_metadata(e.path())?;
        let entry = if meta.file_type().is_symlink() {
            Entry::Link(std::fs::read_link(e.path())?)
        } else if meta.is_dir() {
            Entry::Dir
        } else {
            Entry::File {
                executable: executable(&meta),
            }
        };
        out.insert(name, entry);
    }
    Ok(out)
}

#[cfg(unix)]
fn executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn executable(_meta: &std::fs::Metadata) -> bool {
    false
}

fn same_bytes(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (ma, mb) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
    if ma.len() != mb.len() {
        return Ok(false);
    }
    use std::io::Read;
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            // Same length, and every byte so far equal.
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

fn diff(expected: &Path, actual: &Path, rel: &str, out: &mut Vec<Drift>) -> std::io::Result<()> {
    let want = entries(expected)?;
    let have = match entries(actual) {
        Ok(h) => h,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(e),
    };
    let path = |name: &str| {
        if rel.is_empty() {
            name.to_owned()
        } else {
            format!("{rel}/{name}")
        }
    };
    let mut push = |name: &str, kind: &str| {
        out.push(Drift {
            path: path(name),
            kind: kind.to_owned(),
        });
    };
    let mut deeper = Vec::new();
    for (name, w) in &want {
        match (w, have.get(name)) {
            (_, None) => push(name, "missing"),
            (Entry::Dir, Some(Entry::Dir)) => deeper.push(name.clone()),
            (Entry::File { executable: we }, Some(Entry::File { executable: he })) => {
                if !same_bytes(&expected.join(name), &actual.join(name))? {
                    push(name, "modified");
                } else if we != he {
                    push(name, "mode");
                }
            }
            (Entry::Link(a), Some(Entry::Link(b))) => {
                if a != b {
                    push(name, "modified");
                }
            }
            _ => push(name, "type"),
        }
    }
    for name in have.keys() {
        let ours = rel.is_empty() && name == MARKER;
        if !ours && !want.contains_key(name) {
            push(name, "added");
        }
    }
    for name in deeper {
        diff(
            &expected.join(&name),
            &actual.join(&name),
            &path(&name),
            out,
        )?;
    }
    Ok(())
}

impl Context {
    /// Compare each locked package's tree under `to` with its archive (see [`VerifyRequest`]).
    #[tracing::instrument(skip_all, fields(to = %request.to.display()))]
    pub async fn verify(self: &Arc<Self>, request: VerifyRequest) -> Result<VerifyReport, Error> {
        if !request.to.is_absolute() {
            return Err(Error::BadRequest(format!(
                "install directory {} must be an absolute path",
                request.to.display()
            )));
        }
        let lock = Lockfile::parse(&request.lock).map_err(Error::BadRequest)?;
        for name in &request.packages {
            if lock.get(name).is_none() {
                return Err(Error::NotFound(format!("{name} is not in {FILE_NAME}")));
            }
        }
        let mut packages = Vec::new();
        for entry in &lock.packages {
            if !request.packages.is_empty() && !request.packages.contains(&entry.name) {
                continue;
            }
            let bad =
                |what: String| Error::BadRequest(format!("{FILE_NAME}: {}: {what}", entry.name));
            let name = PackageName::new(&entry.name).map_err(|e| bad(e.to_string()))?;
            let id: ContentId = entry
                .content_id
                .parse()
                .map_err(|e: peerpack_core::content_id::ContentIdError| bad(e.to_string()))?;
            let target = request.to.join(name.as_str());
            let path = target.to_string_lossy().into_owned();
            let label = format!("{name} {}", entry.version);
            let marker = Marker::read(&target);
            let (state, drift) = match marker {
                _ if std::fs::symlink_metadata(&target).is_err() => ("missing", Vec::new()),
                Some(m) if m.name == entry.name && m.content_id == entry.content_id => {
                    // The archive of an installed version is kept by gc; fetch it if it went.
                    let size = self
                        .catalogue
                        .with_store(move |s| {
                            Ok(s.db
                                .records_with_content(&id)?
                                .first()
                                .map(|r| r.archive_size))
                        })
                        .await?;
                    if !self.catalogue.blobs.contains(&id) {
                        // Only an archive a signed record describes is fetched: its size is
                        // what providers are held to.
                        let size = size.ok_or_else(|| {
                            Error::NotFound(format!(
                                "{name} {}: this node has no record of {id}; `peerpack install` fetches it",
                                entry.version
                            ))
                        })?;
                        let (progress, _tracked) = self.transfers.downloads.track(id, size);
                        download::fetch(self, id, size, progress).await?;
                    }
                    let (blobs, t, l) = (self.catalogue.blobs.clone(), target.clone(), label);
                    let drift = crate::telemetry::blocking("install.compare", move || {
                        compare(&blobs, &id, &t, &l)
                    })
                    .await
                    .map_err(|e| Error::task("checking an installed tree", e))??;
                    (if drift.is_empty() { "ok" } else { "drifted" }, drift)
                }
                _ => ("foreign", Vec::new()),
            };
            packages.push(Verified {
                name: entry.name.clone(),
                version: entry.version.clone(),
                path,
                state: state.to_owned(),
                drift,
            });
        }
        Ok(VerifyReport { packages })
    }

    /// Drop root packages from the lock, and delete the trees of every package no remaining
    /// root needs (see [`RemoveRequest`]).
    #[tracing::instrument(skip_all, fields(packages = ?request.packages))]
    pub async fn remove(self: &Arc<Self>, request: RemoveRequest) -> Result<RemoveReport, Error> {
        if !request.to.is_absolute() {
            return Err(Error::BadRequest(format!(
                "install directory {} must be an absolute path",
                request.to.display()
            )));
        }
        if request.packages.is_empty() {
            return Err(Error::BadRequest(
                "name at least one package to remove".into(),
            ));
        }
        let mut lock = Lockfile::parse(&request.lock).map_err(Error::BadRequest)?;
        for name in &request.packages {
            if lock.get(name).is_none() && !lock.is_root(name) {
                return Err(Error::NotFound(format!("{name} is not in {FILE_NAME}")));
            }
            if !lock.is_root(name) {
                let by: Vec<String> = lock
                    .dependents(name)
                    .iter()
                    .map(|p| format!("{} {}", p.name, p.version))
                    .collect();
                return Err(Error::Conflict(format!(
                    "{name} was not installed by name: it is a dependency of {}; remove those instead",
                    by.join(", ")
                )));
            }
        }
        lock.roots
            .retain(|r| !request.packages.iter().any(|n| n == root_name(r)));
        let roots: Vec<String> = lock.roots.iter().map(|r| root_name(r).to_owned()).collect();
        // The remaining roots' closure keeps its versions: read it from the lock.
        let needed: BTreeSet<String> = super::plan::locked_order(&lock, &roots)?
            .into_iter()
            .map(|p| p.name.clone())
            .collect();
        let (gone, kept): (Vec<_>, Vec<_>) = lock
            .packages
            .drain(..)
            .partition(|p| !needed.contains(&p.name));
        // A name is a path segment below `to`: only a valid one may name a tree to delete.
        for p in &gone {
            PackageName::new(&p.name)
                .map_err(|e| Error::BadRequest(format!("{FILE_NAME}: {:?}: {e}", p.name)))?;
        }
        lock.packages = kept;
        let to = request.to.clone();
        let removed = crate::telemetry::blocking("install.delete", move || {
            gone.into_iter()
                .map(|p| {
                    let target = to.join(&p.name);
                    let deleted =
                        Marker::read(&target).is_some_and(|m| m.name == p.name) && discard(&target);
                    Uninstalled {
                        path: target.to_string_lossy().into_owned(),
                        name: p.name,
                        version: p.version,
                        deleted,
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| Error::task("removing packages", e))?;
        tracing::info!(removed = removed.len(), "removed packages");
        Ok(RemoveReport {
            removed,
            lock: lock.to_text(),
        })
    }
}

/// Move a tree aside under a name the leftover sweep finishes, then delete it.
fn discard(target: &Path) -> bool {
    let doomed = beside(target, DISCARDED, &stamp());
    match std::fs::rename(target, &doomed).and_then(|()| remove_tree(&doomed)) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(path = %target.display(), error = %e, "could not remove a package");
            false
        }
    }
}
