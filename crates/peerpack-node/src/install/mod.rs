//! Installing packages: resolve, fetch, verify, extract, lock.
//!
//! `place` puts an extracted tree where the user asked, crash-safely; this module decides
//! what to install and fetches it.

mod place;

pub use place::{DISCARDED, MARKER, Marker, REPLACED, STAGED};
use place::{check_replaceable, place, sweep_leftovers};

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use peerpack_core::resolve::ResolveError;
use peerpack_core::{ContentId, PackageName, PackageRecord, Version, VersionReq};

use crate::context::Context;
use crate::download::{self, Progress};
use crate::error::Error;
use crate::lockfile::{Locked, Lockfile};
use crate::lookup::Lookup;
use crate::names::parse_spec;
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

impl Context {
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
            .filter(|r| !self.catalogue.blobs.contains(&r.content_id))
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
        .map_err(|e| Error::task("checking the install directory", e))??;
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
                .catalogue
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
                        crate::lookup::lookup(self, &name).await?
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
                .catalogue
                .with_store(move |s| {
                    let state = s.db.adopt_owner(&n, &k)?;
                    s.refresh(std::slice::from_ref(&n))?;
                    Ok(state)
                })
                .await?;
            self.catalogue.refresh_names(vec![name.clone()]).await;
            if let Some(owner) = state.owner().filter(|o| *o != locked_key) {
                return Err(Error::Conflict(format!(
                    "{file} says {name} is published by {locked_key}, but this node trusts {owner} as its owner; if the lock is right, run `peerpack trust {name} {locked_key}` and install again"
                )));
            }
            let mut record = self.record_of(&name, &version).await?;
            if record.is_none()
                && matches!(crate::lookup::lookup(self, &name).await?, Lookup::Found)
            {
                record = self.record_of(&name, &version).await?;
            }
            // Older than the versions a lookup reads: ask for this one.
            if record.is_none() && crate::lookup::fetch_version(self, &name, &version).await? {
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
            .catalogue
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
        self.catalogue.flag_unsafe(&record.content_id);
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
        let versions = match self.catalogue.records.get(name) {
            Some(v) => v,
            None => {
                let n = name.clone();
                self.catalogue
                    .with_store(move |s| Ok(s.versions(&n)?))
                    .await?
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
        let owner = self
            .catalogue
            .with_store(move |s| Ok(s.db.owner(&n)?))
            .await?;
        if owner != Some(record.publisher) {
            return Err(Error::Conflict(format!(
                "{label}: signed by {}, which does not own the name",
                record.publisher
            )));
        }

        let id = record.content_id;
        // An archive found unsafe once is never fetched again, from anyone.
        if let Some(reason) = self
            .catalogue
            .with_store(move |s| Ok(s.db.unsafe_reason(&id)?))
            .await?
        {
            return Err(Error::UnsafeArchive(format!(
                "{label} ({id}) is flagged unsafe and will not be installed: {reason}"
            )));
        }
        let (fetch_progress, _tracked) = self.transfers.downloads.track(id, record.archive_size);
        *peerpack_core::sync::lock(&progress.current) =
            Some((label.clone(), fetch_progress.clone()));
        let fetched = download::fetch(self, id, record.archive_size, fetch_progress).await;
        *peerpack_core::sync::lock(&progress.current) = None;
        let fetched = fetched.map_err(|e| match e.kind() {
            crate::error::Kind::Unavailable => Error::Unavailable(format!("{label}: {e}")),
            _ => e,
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
            .catalogue
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
            let blobs = self.catalogue.blobs.clone();
            let marker = Marker::new(&name, &version, &id);
            let (t, l) = (target.clone(), label.clone());
            // A fresh download was checked piece by piece a moment ago; an archive that was
            // already in the store is checked again, in case it rotted on disk.
            let verify = fetched.cached;
            let placed = tokio::task::spawn_blocking(move || {
                place(&blobs, &id, &t, &l, &marker, verify, force)
            })
            .await
            .map_err(|e| Error::task("placing the package", e))?;
            if let Err(Error::UnsafeArchive(reason)) = &placed {
                self.flag_unsafe(record, reason).await;
            }
            placed?;
        }
        let (p, n, v) = (path_text.clone(), name.clone(), version.clone());
        let size = record.archive_size;
        self.catalogue
            .with_store(move |s| {
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
