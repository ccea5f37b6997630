//! Installing packages: resolve, fetch, verify, extract, lock.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use peerpack_core::resolve::ResolveError;
use peerpack_core::{ContentId, PackageName, PackageRecord, Version, VersionReq};
use serde::{Deserialize, Serialize};

use crate::download::{self, Progress};
use crate::error::Error;
use crate::ingest::Lookup;
use crate::lockfile::{Locked, Lockfile};
use crate::node::Inner;
use peerpack_store::NameState;

/// Default install directory, relative to where the user runs `peerpack install`.
pub const DEFAULT_DIR: &str = peerpack_api::DEFAULT_INSTALL_DIR;

pub use peerpack_api::{InstallReport, InstallRequest, Installed};

/// Live figures of an install, for progress displays.
#[derive(Debug, Default)]
pub struct InstallProgress {
    /// Packages to install.
    pub packages: AtomicU64,
    /// Packages done.
    pub packages_done: AtomicU64,
    /// Bytes of archives to download.
    pub bytes_total: AtomicU64,
    bytes_finished: AtomicU64,
    current: Mutex<Option<(String, Arc<Progress>)>>,
}

impl InstallProgress {
    /// Bytes verified so far, the current download included.
    pub fn bytes_done(&self) -> u64 {
        let current = peerpack_core::sync::lock(&self.current)
            .as_ref()
            .map_or(0, |(_, p)| p.done.load(Ordering::Relaxed));
        self.bytes_finished.load(Ordering::Relaxed) + current
    }

    /// The package being downloaded and how many peers are serving it.
    pub fn current(&self) -> Option<(String, u64)> {
        peerpack_core::sync::lock(&self.current)
            .as_ref()
            .map(|(n, p)| (n.clone(), p.sources.load(Ordering::Relaxed)))
    }
}

/// Parse `NAME` or `NAME@REQ`.
pub fn parse_spec(spec: &str) -> Result<(PackageName, Option<VersionReq>), Error> {
    let (name, req) = match spec.split_once('@') {
        Some((n, r)) => (n, Some(r)),
        None => (spec, None),
    };
    let name = PackageName::new(name).map_err(|e| Error::BadRequest(format!("{spec:?}: {e}")))?;
    let req = req
        .map(|r| {
            VersionReq::parse(r).map_err(|e| {
                Error::BadRequest(format!(
                    "{spec:?}: {r:?} is not a version requirement ({e}); try NAME@1.2, NAME@^1.2.3 or NAME@=1.2.3"
                ))
            })
        })
        .transpose()?;
    Ok((name, req))
}

impl Inner {
    /// Install packages (see [`InstallRequest`]).
    #[tracing::instrument(skip(self, request, progress), fields(packages = ?request.packages, locked = request.locked))]
    pub async fn install(
        self: &Arc<Self>,
        request: InstallRequest,
        progress: Arc<InstallProgress>,
    ) -> Result<InstallReport, Error> {
        if !request.to.is_absolute() {
            return Err(Error::BadRequest(format!(
                "install directory {} must be an absolute path",
                request.to.display()
            )));
        }
        let lock = request
            .lock
            .as_deref()
            .map(Lockfile::parse)
            .transpose()
            .map_err(Error::BadRequest)?;
        if let Some(owner) = &request.owner {
            let [spec] = request.packages.as_slice() else {
                return Err(Error::BadRequest(
                    "--owner needs exactly one package: the one whose owner it names".into(),
                ));
            };
            let (name, _) = parse_spec(spec)?;
            self.trust(name.as_str(), owner).await?;
        }
        let plan = match (&lock, request.locked, request.packages.is_empty()) {
            (None, true, _) => {
                return Err(Error::BadRequest(format!(
                    "--locked needs a {} in the current directory; run install without --locked first",
                    crate::lockfile::FILE_NAME
                )));
            }
            (Some(lock), true, _) | (Some(lock), false, true) => {
                self.plan_locked(lock, &request.packages).await?
            }
            (None, false, true) => {
                return Err(Error::BadRequest(format!(
                    "name at least one package to install (NAME or NAME@REQ), or run install where a {} is",
                    crate::lockfile::FILE_NAME
                )));
            }
            (_, false, false) => self.plan(&request.packages).await?,
        };

        progress
            .packages
            .store(plan.len() as u64, Ordering::Relaxed);
        let missing: u64 = plan
            .iter()
            .filter(|r| !self.blobs.contains(&r.content_id))
            .map(|r| r.archive_size)
            .sum();
        progress.bytes_total.store(missing, Ordering::Relaxed);

        let dir = request.to.clone();
        let names: Vec<String> = plan.iter().map(|r| r.name().to_string()).collect();
        let force = request.force;
        // First put back what an interrupted install moved aside; then, before anything is
        // downloaded or written, refuse a path that is not peerpack's to replace.
        tokio::task::spawn_blocking(move || {
            sweep_leftovers(&dir);
            if force {
                return Ok(());
            }
            names
                .iter()
                .try_for_each(|name| check_replaceable(&dir.join(name), name))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        let mut installed = Vec::with_capacity(plan.len());
        for record in &plan {
            installed.push(
                self.install_one(record, &request.to, request.force, &progress)
                    .await?,
            );
            progress.packages_done.fetch_add(1, Ordering::Relaxed);
        }
        let mut lock = lock.unwrap_or_default();
        lock.merge(plan.iter().map(|r| {
            Locked {
                name: r.name().to_string(),
                version: r.version().to_string(),
                content_id: r.content_id.to_string(),
                publisher: r.publisher.to_string(),
                dependencies: r
                    .manifest
                    .dependencies
                    .keys()
                    .map(ToString::to_string)
                    .collect(),
            }
        }));
        Ok(InstallReport {
            installed,
            lock: lock.to_text(),
        })
    }

    /// The records to install for `specs`, dependencies first.
    async fn plan(self: &Arc<Self>, specs: &[String]) -> Result<Vec<PackageRecord>, Error> {
        let mut roots = Vec::new();
        for spec in specs {
            let (name, req) = parse_spec(spec)?;
            roots.push((name, req.unwrap_or(VersionReq::STAR)));
        }
        let mut looked_up = HashSet::new();
        loop {
            let r = roots.clone();
            let result = self
                .with_store(move |s| {
                    let failed = std::cell::RefCell::new(None);
                    let out = peerpack_core::resolve::resolve(&r, |name| match s.versions(name) {
                        Ok(v) => v.to_vec(),
                        Err(e) => {
                            *failed.borrow_mut() = Some(e);
                            Vec::new()
                        }
                    });
                    match failed.into_inner() {
                        Some(e) => Err(e.into()),
                        None => Ok(out),
                    }
                })
                .await?;
            match result {
                Ok(plan) => return Ok(plan),
                Err(ResolveError::Unknown { name, required_by }) => {
                    // A contested name installs nothing until the user chooses.
                    if let (NameState::Contested, claims) = self.name_state(&name).await? {
                        return Err(crate::names::contested(&name, &claims));
                    }
                    // Not in the catalogue: ask the DHT once per name.
                    let found = if looked_up.insert(name.clone()) {
                        crate::ingest::lookup(self, &name).await?
                    } else {
                        Lookup::Missing
                    };
                    match found {
                        Lookup::Found => {}
                        Lookup::Contested(claims) => {
                            return Err(crate::names::contested(&name, &claims));
                        }
                        Lookup::Missing => {
                            return Err(Error::NotFound(
                                ResolveError::Unknown { name, required_by }.to_string(),
                            ));
                        }
                    }
                }
                Err(e) => return Err(Error::BadRequest(e.to_string())),
            }
        }
    }

    /// The records the lock file names (all of them, or `specs` and their dependencies),
    /// dependencies first, each checked against the lock.
    async fn plan_locked(
        self: &Arc<Self>,
        lock: &Lockfile,
        specs: &[String],
    ) -> Result<Vec<PackageRecord>, Error> {
        let file = crate::lockfile::FILE_NAME;
        let mut wanted: Vec<String> = Vec::new();
        if specs.is_empty() {
            wanted.extend(lock.packages.iter().map(|p| p.name.clone()));
        }
        for spec in specs {
            let (name, req) = parse_spec(spec)?;
            let entry = lock.get(name.as_str()).ok_or_else(|| {
                Error::BadRequest(format!(
                    "{name} is not in {file}; run install without --locked to add it"
                ))
            })?;
            if let Some(req) = req {
                let v = Version::parse(&entry.version).map_err(|e| {
                    Error::BadRequest(format!(
                        "{file}: {name} has version {:?}: {e}",
                        entry.version
                    ))
                })?;
                if !req.matches(&v) {
                    return Err(Error::BadRequest(format!(
                        "{file} locks {name} at {v}, which does not satisfy {req}"
                    )));
                }
            }
            wanted.push(name.to_string());
        }
        // Dependencies first: depth-first over the lock's dependency lists.
        let mut order: Vec<&Locked> = Vec::new();
        let mut state: BTreeMap<&str, bool> = BTreeMap::new();
        fn visit<'a>(
            lock: &'a Lockfile,
            name: &str,
            state: &mut BTreeMap<&'a str, bool>,
            order: &mut Vec<&'a Locked>,
            path: &mut Vec<String>,
        ) -> Result<(), Error> {
            let entry = lock.get(name).ok_or_else(|| {
                Error::BadRequest(format!(
                    "{}: {} needs {name}, which is not locked; the lock file is incomplete",
                    crate::lockfile::FILE_NAME,
                    path.last().map_or("the command line", String::as_str)
                ))
            })?;
            match state.get(entry.name.as_str()) {
                Some(true) => return Ok(()),
                Some(false) => {
                    path.push(name.to_owned());
                    return Err(Error::BadRequest(format!(
                        "{}: dependency cycle: {}",
                        crate::lockfile::FILE_NAME,
                        path.join(" -> ")
                    )));
                }
                None => {}
            }
            state.insert(&entry.name, false);
            path.push(name.to_owned());
            for d in &entry.dependencies {
                visit(lock, d, state, order, path)?;
            }
            path.pop();
            state.insert(&entry.name, true);
            order.push(entry);
            Ok(())
        }
        for name in &wanted {
            visit(lock, name, &mut state, &mut order, &mut Vec::new())?;
        }

        let mut plan = Vec::with_capacity(order.len());
        for entry in order {
            let bad = |what: &str| Error::BadRequest(format!("{file}: {}: {what}", entry.name));
            let name = PackageName::new(&entry.name).map_err(|e| bad(&e.to_string()))?;
            let version = Version::parse(&entry.version).map_err(|e| bad(&e.to_string()))?;
            let id: ContentId = entry
                .content_id
                .parse()
                .map_err(|e: peerpack_core::content_id::ContentIdError| bad(&e.to_string()))?;
            let locked_key =
                crate::names::parse_key(&entry.publisher).map_err(|e| bad(&e.to_string()))?;
            // The lock names the key: it settles a name this node has no owner for (or a
            // contested one), and it never installs a record by another key.
            let (n, k) = (name.clone(), locked_key);
            let state = self
                .with_store(move |s| {
                    let state = s.db.adopt_owner(&n, &k)?;
                    s.refresh(std::slice::from_ref(&n))?;
                    Ok(state)
                })
                .await?;
            crate::names::refresh_names(self, vec![name.clone()]).await;
            if let Some(owner) = state.owner().filter(|o| *o != locked_key) {
                return Err(Error::Conflict(format!(
                    "{file} says {name} is published by {locked_key}, but this node trusts {owner} as its owner; if the lock is right, run `peerpack trust {name} {locked_key}` and install again"
                )));
            }
            let mut record = self.record_of(&name, &version).await?;
            if record.is_none()
                && matches!(crate::ingest::lookup(self, &name).await?, Lookup::Found)
            {
                record = self.record_of(&name, &version).await?;
            }
            // Older than the versions a lookup reads: ask for this one.
            if record.is_none() && crate::ingest::fetch_version(self, &name, &version).await? {
                record = self.record_of(&name, &version).await?;
            }
            let record = record.ok_or_else(|| {
                Error::NotFound(format!(
                    "{file} locks {name} {version}, which is neither in the catalogue nor in the DHT"
                ))
            })?;
            if record.content_id != id {
                return Err(Error::Conflict(format!(
                    "{file} locks {name} {version} to {id}, but its signed record says {}; refusing to install other bytes",
                    record.content_id
                )));
            }
            if record.publisher.to_string() != entry.publisher {
                return Err(Error::Conflict(format!(
                    "{file} says {name} {version} was signed by {}, but its record is signed by {}",
                    entry.publisher, record.publisher
                )));
            }
            plan.push(record);
        }
        Ok(plan)
    }

    /// Flag `record`'s archive as unsafe: it matched its content id, so its publisher signed
    /// it. Its record leaves search, the archive leaves the blob store and is no longer
    /// provided, and no install here fetches it again.
    async fn flag_unsafe(self: &Arc<Self>, record: &PackageRecord, reason: &str) {
        let (r, why) = (record.clone(), reason.to_owned());
        let flagged = self
            .with_store(move |s| {
                s.db.flag_unsafe(&r, &why)?;
                s.db.forget_blob(&r.content_id)?;
                let _ = s.blobs.remove(&r.content_id);
                Ok(())
            })
            .await;
        if let Err(e) = flagged {
            tracing::warn!(error = %e, "could not flag an unsafe archive");
            return;
        }
        tracing::warn!(
            name = %record.name(),
            version = %record.version(),
            publisher = %record.publisher,
            reason,
            "flagged an unsafe archive"
        );
        peerpack_core::sync::lock(&self.unsafe_archives).insert(record.content_id.to_string());
        let _ = self
            .net
            .stop_providing(peerpack_net::protocol::provider_key(&record.content_id))
            .await;
    }

    /// One version's record, through the record cache.
    pub(crate) async fn record_of(
        self: &Arc<Self>,
        name: &PackageName,
        version: &Version,
    ) -> Result<Option<PackageRecord>, Error> {
        let versions = match self.records.get(name) {
            Some(v) => v,
            None => {
                let n = name.clone();
                self.with_store(move |s| Ok(s.versions(&n)?)).await?
            }
        };
        Ok(versions.iter().find(|r| r.version() == version).cloned())
    }

    async fn install_one(
        self: &Arc<Self>,
        record: &PackageRecord,
        to: &Path,
        force: bool,
        progress: &InstallProgress,
    ) -> Result<Installed, Error> {
        let name = record.name().clone();
        let version = record.version().clone();
        let label = format!("{name} {version}");
        // The record was checked when stored; check it again before trusting its bytes.
        record
            .verify()
            .map_err(|e| Error::Conflict(format!("{label}: {e}")))?;
        let n = name.clone();
        let owner = self.with_store(move |s| Ok(s.db.owner(&n)?)).await?;
        if owner != Some(record.publisher) {
            return Err(Error::Conflict(format!(
                "{label}: signed by {}, which does not own the name",
                record.publisher
            )));
        }

        let id = record.content_id;
        // An archive found unsafe once is never fetched again, from anyone.
        if let Some(reason) = self
            .with_store(move |s| Ok(s.db.unsafe_reason(&id)?))
            .await?
        {
            return Err(Error::UnsafeArchive(format!(
                "{label} ({id}) is flagged unsafe and will not be installed: {reason}"
            )));
        }
        let (fetch_progress, _tracked) = self.downloads.track(id, record.archive_size);
        *peerpack_core::sync::lock(&progress.current) =
            Some((label.clone(), fetch_progress.clone()));
        let fetched = download::fetch(self, id, record.archive_size, fetch_progress).await;
        *peerpack_core::sync::lock(&progress.current) = None;
        let fetched = fetched.map_err(|e| match e {
            Error::Unavailable(m) => Error::Unavailable(format!("{label}: {m}")),
            other => other,
        })?;
        if !fetched.cached {
            progress
                .bytes_finished
                .fetch_add(fetched.size, Ordering::Relaxed);
        }

        let target = to.join(name.as_str());
        let path_text = target.to_string_lossy().into_owned();
        let (p, i) = (path_text.clone(), id);
        // Unchanged: this node recorded the install, and the tree's marker still says so.
        let unchanged = self
            .with_store(move |s| {
                Ok(s.db
                    .installs()?
                    .iter()
                    .any(|x| x.path == p && x.content_id == i))
            })
            .await?
            && Marker::read(&target)
                .is_some_and(|m| m.name == name.as_str() && m.content_id == id.to_string());
        if !unchanged {
            let blobs = self.blobs.clone();
            let marker = Marker::new(&name, &version, &id);
            let (t, l) = (target.clone(), label.clone());
            // A fresh download was checked piece by piece a moment ago; an archive that was
            // already in the store is checked again, in case it rotted on disk.
            let verify = fetched.cached;
            let placed = tokio::task::spawn_blocking(move || {
                place(&blobs, &id, &t, &l, &marker, verify, force)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
            if let Err(Error::UnsafeArchive(reason)) = &placed {
                self.flag_unsafe(record, reason).await;
            }
            placed?;
        }
        let (p, n, v) = (path_text.clone(), name.clone(), version.clone());
        let size = record.archive_size;
        self.with_store(move |s| {
            s.db.record_install(&p, &n, &v, &id)?;
            s.db.touch_blob(&id, size)?;
            Ok(())
        })
        .await?;
        tracing::info!(%name, %version, path = %target.display(), unchanged, "installed");
        Ok(Installed {
            name: name.to_string(),
            version: version.to_string(),
            content_id: id.to_string(),
            path: path_text,
            sources: fetched.sources,
            fetched_bytes: fetched.fetched_bytes,
            resumed_bytes: fetched.resumed_bytes,
            cached: fetched.cached,
            unchanged,
        })
    }
}

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
    fn new(name: &PackageName, version: &Version, id: &ContentId) -> Self {
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
        std::fs::write(&path, text)
    }
}

/// Refuse to replace `target` with package `name` unless it is missing or a tree peerpack
/// installed for `name` (its [`MARKER`] names it).
fn check_replaceable(target: &Path, name: &str) -> Result<(), Error> {
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

/// Marks in the names of the trees [`place`] keeps beside `DIR/NAME` while it swaps, each
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

/// Remove a directory tree, or a file or symlink (never what a symlink points to).
fn remove_tree(path: &Path) -> std::io::Result<()> {
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
fn sweep_leftovers(dir: &Path) {
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

/// Extract the archive `id` into `target` with its `marker`, replacing what is there only
/// once the new tree is complete, and only a tree peerpack installed for the same package
/// unless `force`. On any error the target is as it was. A crash at any step leaves what
/// [`sweep_leftovers`] puts right: the old tree moves aside, the new one moves in, and only
/// then is the old one removed.
fn place(
    blobs: &peerpack_store::BlobStore,
    id: &ContentId,
    target: &Path,
    label: &str,
    marker: &Marker,
    verify: bool,
    force: bool,
) -> Result<(), Error> {
    if verify {
        blobs
            .verify(id)
            .map_err(|e| Error::Internal(format!("{label}: {e}")))?;
    }
    let parent = target.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent)
        .map_err(|e| Error::BadRequest(format!("cannot create {}: {e}", parent.display())))?;
    let base = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stamp = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let staging = parent.join(format!(".{base}{STAGED}{stamp}"));
    let file = std::fs::File::open(blobs.path(id))
        .map_err(|e| Error::Internal(format!("{label}: {e}")))?;
    peerpack_core::archive::extract(
        std::io::BufReader::new(file),
        &staging,
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
    let old = parent.join(format!(".{base}{REPLACED}{stamp}"));
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
        let doomed = parent.join(format!(".{base}{DISCARDED}{stamp}"));
        let removed = std::fs::rename(&old, &doomed).and_then(|()| remove_tree(&doomed));
        if let Err(e) = removed {
            tracing::warn!(path = %old.display(), error = %e, "could not remove the replaced install");
        }
    }
    Ok(())
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
