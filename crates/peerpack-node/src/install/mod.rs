//! Installing packages: resolve, fetch, verify, extract, lock.
//!
//! `place` puts an extracted tree where the user asked, crash-safely; this module decides
//! what to install and fetches it.

mod place;
mod plan;
mod verify;

pub use place::{DISCARDED, MARKER, Marker, REPLACED, STAGED};
use place::{check_replaceable, place, sweep_leftovers, unpack_for_later};

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use peerpack_api::{Locked, Lockfile};
use peerpack_core::{PackageName, PackageRecord, Version};
use peerpack_store::unpacked::LinkMode;

use crate::context::Context;
use crate::download::{self, Progress};
use crate::error::Error;
use crate::names::parse_spec;

/// Default install directory, relative to where the user runs `peerpack install`.
pub const DEFAULT_DIR: &str = peerpack_api::DEFAULT_INSTALL_DIR;

pub use peerpack_api::{InstallReport, InstallRequest, Installed};

/// Live figures of an install, for progress displays, and the token that cancels it.
#[derive(Debug, Default)]
pub struct InstallProgress {
    /// Cancelled: the install stops before it changes anything in the target, or, once it
    /// has begun to place trees, finishes placing them.
    pub cancel: tokio_util::sync::CancellationToken,
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

/// The owner's deprecation message and yank reason for a version.
type Notices = (Option<String>, Option<String>);

fn cancelled() -> Error {
    Error::Cancelled("the install was cancelled before it changed anything in the target".into())
}

impl Context {
    /// Install packages (see [`InstallRequest`]).
    #[tracing::instrument(skip(self, request, progress), fields(packages = ?request.packages, locked = request.locked, installed, result))]
    pub async fn install(
        self: &Arc<Self>,
        request: InstallRequest,
        progress: Arc<InstallProgress>,
    ) -> Result<InstallReport, Error> {
        let report = self.install_uncounted(request, progress).await;
        let result = match &report {
            Ok(_) => "ok",
            Err(e) => crate::telemetry::error_kind(e),
        };
        self.metrics.install(result);
        let span = tracing::Span::current();
        span.record("result", result);
        if let Ok(r) = &report {
            span.record("installed", r.installed.len());
        }
        report
    }

    async fn install_uncounted(
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
        let (plan, new_lock) = self.choose(&request, lock.as_ref()).await?;
        let changes = match (&lock, request.locked) {
            (Some(_), true) => Vec::new(),
            _ => self.changes(lock.as_ref(), &plan).await?,
        };
        if request.dry_run {
            return Ok(InstallReport {
                installed: Vec::new(),
                changes,
                lock: new_lock.to_text(),
            });
        }

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
        crate::telemetry::blocking("install.check", move || {
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
        // Fetch everything first: until every archive is here the install can be cancelled
        // and nothing in the target has changed. Then place every tree, uncancelled: each
        // swap is quick, and stopping between two would leave the target half updated.
        let mut ready = Vec::with_capacity(plan.len());
        for record in &plan {
            let fetched = tokio::select! {
                r = self.fetch_one(record, &progress) => r?,
                () = progress.cancel.cancelled() => return Err(cancelled()),
            };
            ready.push(fetched);
            progress.packages_done.fetch_add(1, Ordering::Relaxed);
        }
        if progress.cancel.is_cancelled() {
            return Err(cancelled());
        }
        let mut installed = Vec::with_capacity(plan.len());
        for (record, (fetched, notices)) in plan.iter().zip(ready) {
            installed.push(
                self.place_one(
                    record,
                    fetched,
                    notices,
                    &request.to,
                    request.force,
                    request.repair,
                )
                .await?,
            );
        }
        Ok(InstallReport {
            installed,
            changes,
            lock: new_lock.to_text(),
        })
    }

    /// The records to install, dependencies first, and the lock to write afterwards.
    async fn choose(
        self: &Arc<Self>,
        request: &InstallRequest,
        lock: Option<&Lockfile>,
    ) -> Result<(Vec<PackageRecord>, Lockfile), Error> {
        let file = peerpack_api::lockfile::FILE_NAME;
        let specs = &request.packages;
        if request.locked {
            let lock = lock.ok_or_else(|| {
                Error::BadRequest(format!(
                    "--locked needs a {file} in the current directory; run install without --locked first"
                ))
            })?;
            return Ok((self.plan_locked(lock, specs).await?, lock.clone()));
        }
        let to = lock.and_then(|l| l.to.clone());
        if request.update {
            let lock = lock.ok_or_else(|| {
                Error::BadRequest(format!(
                    "nothing to update: there is no {file} in the current directory; install packages first"
                ))
            })?;
            let mut free = Vec::new();
            for spec in specs {
                let (name, _) = parse_spec(spec)?;
                if lock.get(name.as_str()).is_none() {
                    return Err(Error::NotFound(format!(
                        "{name} is not in {file}; install it first"
                    )));
                }
                free.push(name.to_string());
            }
            let keep: Vec<Locked> = lock
                .packages
                .iter()
                .filter(|p| !specs.is_empty() && !free.contains(&p.name))
                .cloned()
                .collect();
            // What may move is read afresh from the DHT first: gossip reaches only the nodes
            // online when a version or a yank went out.
            for p in lock.packages.iter().filter(|p| !keep.contains(p)) {
                if let Ok(name) = PackageName::new(&p.name)
                    && let Err(e) = crate::lookup::lookup(self, &name).await
                {
                    tracing::info!(%name, error = %e, "could not refresh a name before an update");
                }
            }
            let plan = self.plan(&lock.roots, &keep, !request.dry_run).await?;
            let new_lock = plan::lock_of(lock.roots.clone(), to, &plan);
            return Ok((plan, new_lock));
        }
        match lock {
            Some(lock) if specs.is_empty() => {
                Ok((self.plan_locked(lock, &[]).await?, lock.clone()))
            }
            None if specs.is_empty() => Err(Error::BadRequest(format!(
                "name at least one package to install (NAME or NAME@REQ), or run install where a {file} is"
            ))),
            _ => {
                let roots = lock.map_or_else(
                    || Lockfile::default().roots_with(specs),
                    |l| l.roots_with(specs),
                );
                let keep = lock.map(|l| l.packages.clone()).unwrap_or_default();
                let plan = self.plan(&roots, &keep, !request.dry_run).await?;
                let new_lock = plan::lock_of(roots, to, &plan);
                Ok((plan, new_lock))
            }
        }
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

    /// Check `record` and fetch its archive; answers the fetch and the owner's deprecation
    /// message for the version.
    async fn fetch_one(
        self: &Arc<Self>,
        record: &PackageRecord,
        progress: &InstallProgress,
    ) -> Result<(download::Fetched, Notices), Error> {
        let name = record.name().clone();
        let version = record.version().clone();
        let label = format!("{name} {version}");
        // The record was checked when stored; check it again before trusting its bytes.
        record
            .verify()
            .map_err(|e| Error::Conflict(format!("{label}: {e}")))?;
        let (n, v) = (name.clone(), version.clone());
        let (owner, notices) = self
            .catalogue
            .with_store(move |s| {
                let notices =
                    s.db.index_record(&n)?
                        .and_then(|i| {
                            i.entry(&v)
                                .map(|e| (e.deprecated.clone(), e.yanked.clone()))
                        })
                        .unwrap_or_default();
                Ok((s.db.owner(&n)?, notices))
            })
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
        Ok((fetched, notices))
    }

    /// Put `record`'s fetched archive in place as `TO/NAME`, unless the tree there is already
    /// it (and, with `repair`, still matches it).
    async fn place_one(
        self: &Arc<Self>,
        record: &PackageRecord,
        fetched: download::Fetched,
        (deprecated, yanked): Notices,
        to: &Path,
        force: bool,
        repair: bool,
    ) -> Result<Installed, Error> {
        let name = record.name().clone();
        let version = record.version().clone();
        let label = format!("{name} {version}");
        let id = record.content_id;
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
        // Repair: a tree that is ours but drifted from its archive is put back whole.
        let repaired = unchanged && repair && {
            let (blobs, t, l) = (self.catalogue.blobs.clone(), target.clone(), label.clone());
            let drift = crate::telemetry::blocking("install.compare", move || {
                verify::compare(&blobs, &id, &t, &l)
            })
            .await
            .map_err(|e| Error::task("checking the installed tree", e))??;
            if !drift.is_empty() {
                tracing::info!(%name, %version, changes = drift.len(), "restoring a drifted tree");
            }
            !drift.is_empty()
        };
        let unchanged = unchanged && !repaired;
        let mut written = None;
        if !unchanged {
            let blobs = self.catalogue.blobs.clone();
            let marker = Marker::new(&name, &version, &id);
            let (t, l) = (target.clone(), label.clone());
            // A fresh download was checked piece by piece a moment ago; an archive that was
            // already in the store is checked again, in case it rotted on disk, unless its
            // unpacked tree (checked when it was unpacked) is placed instead.
            let verify = fetched.cached;
            let link = self.install_link;
            let placed = crate::telemetry::blocking("install.place", move || {
                place(&blobs, &id, &t, &l, &marker, verify, force, link)
            })
            .await
            .map_err(|e| Error::task("placing the package", e))?;
            if let Err(Error::UnsafeArchive(reason)) = &placed {
                self.flag_unsafe(record, reason).await;
            }
            let how = placed?;
            // Unpacked from the archive: keep it unpacked too, after answering, so that the
            // next install of it places files instead.
            if how == place::Written::Unpacked && link != LinkMode::Extract {
                let blobs = self.catalogue.blobs.clone();
                self.supervisor.spawn(async move {
                    let _ = crate::telemetry::blocking("install.unpack", move || {
                        unpack_for_later(&blobs, &id);
                    })
                    .await;
                });
            }
            written = Some(how);
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
            repaired,
            deprecated,
            yanked,
            placed: written.map(|w| w.to_string()),
        })
    }
}
