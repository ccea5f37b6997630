//! Deciding what to install: resolving the roots (keeping locked versions), or reading the
//! lock exactly, and what changed against the lock.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use peerpack_api::lockfile::FILE_NAME;
use peerpack_api::{Change, Locked, Lockfile};
use peerpack_core::resolve::ResolveError;
use peerpack_core::{ContentId, PackageName, PackageRecord, Version, VersionReq};
use peerpack_store::NameState;

use crate::context::Context;
use crate::error::Error;
use crate::lookup::Lookup;
use crate::names::parse_spec;

impl Context {
    /// The records to install for the root specs `roots`, dependencies first. A name in
    /// `keep` stays at that version (an entry of the lock) whenever it satisfies every
    /// requirement on it; with `adopt`, the lock's keys settle names this node has no owner
    /// for.
    pub(crate) async fn plan(
        self: &Arc<Self>,
        roots: &[String],
        keep: &[Locked],
        adopt: bool,
    ) -> Result<Vec<PackageRecord>, Error> {
        let mut parsed = Vec::new();
        for spec in roots {
            let (name, req) = parse_spec(spec)?;
            parsed.push((name, req.unwrap_or(VersionReq::STAR)));
        }
        // Every locked version must be at hand to be kept: fetch the ones the catalogue lacks,
        // checked against the lock as an exact install would.
        let mut preferred = BTreeMap::new();
        for entry in keep {
            let record = self.locked_record(entry, adopt).await?;
            preferred.insert(record.name().clone(), record.version().clone());
        }
        let mut looked_up = HashSet::new();
        loop {
            let (r, p) = (parsed.clone(), preferred.clone());
            let result = self
                .catalogue
                .with_store(move |s| {
                    let failed = std::cell::RefCell::new(None);
                    // A yanked version is never chosen, unless the lock holds it.
                    let out = peerpack_core::resolve::resolve_preferring(
                        &r,
                        |name| match s.versions(name).and_then(|v| {
                            let index = s.db.index_record(name)?;
                            let yanked = |v: &Version| {
                                index
                                    .as_ref()
                                    .and_then(|i| i.entry(v))
                                    .is_some_and(|e| e.yanked.is_some())
                            };
                            Ok(v.iter()
                                .filter(|r| {
                                    p.get(name) == Some(r.version()) || !yanked(r.version())
                                })
                                .cloned()
                                .collect::<Vec<_>>())
                        }) {
                            Ok(v) => v,
                            Err(e) => {
                                *failed.borrow_mut() = Some(e);
                                Vec::new()
                            }
                        },
                        &p,
                    );
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
                            let hint = self.catalogue.did_you_mean(name.as_str()).await;
                            let err = ResolveError::Unknown { name, required_by };
                            return Err(Error::NotFound(match hint {
                                Some(h) => format!("{err} ({h})"),
                                None => err.to_string(),
                            }));
                        }
                    }
                }
                Err(e) => return Err(Error::BadRequest(self.with_yanked(e).await)),
            }
        }
    }

    /// A resolution error, with the versions of its name that were left out as yanked.
    async fn with_yanked(self: &Arc<Self>, e: ResolveError) -> String {
        let ResolveError::Unsatisfiable { name, .. } = &e else {
            return e.to_string();
        };
        let n = name.clone();
        let yanked: Vec<String> = self
            .catalogue
            .with_store(move |s| {
                Ok(s.db
                    .index_record(&n)?
                    .map(|i| {
                        i.versions
                            .iter()
                            .filter(|e| e.yanked.is_some())
                            .map(|e| e.version.to_string())
                            .collect()
                    })
                    .unwrap_or_default())
            })
            .await
            .unwrap_or_default();
        if yanked.is_empty() {
            e.to_string()
        } else {
            format!("{e}; yanked by the owner: {}", yanked.join(", "))
        }
    }

    /// The records the lock file names (all of them, or `specs` and their dependencies),
    /// dependencies first, each checked against the lock.
    pub(super) async fn plan_locked(
        self: &Arc<Self>,
        lock: &Lockfile,
        specs: &[String],
    ) -> Result<Vec<PackageRecord>, Error> {
        let mut wanted: Vec<String> = Vec::new();
        if specs.is_empty() {
            wanted.extend(lock.packages.iter().map(|p| p.name.clone()));
        }
        for spec in specs {
            let (name, req) = parse_spec(spec)?;
            let entry = lock.get(name.as_str()).ok_or_else(|| {
                Error::BadRequest(format!(
                    "{name} is not in {FILE_NAME}; run install without --locked to add it"
                ))
            })?;
            if let Some(req) = req {
                let v = Version::parse(&entry.version).map_err(|e| {
                    Error::BadRequest(format!(
                        "{FILE_NAME}: {name} has version {:?}: {e}",
                        entry.version
                    ))
                })?;
                if !req.matches(&v) {
                    return Err(Error::BadRequest(format!(
                        "{FILE_NAME} locks {name} at {v}, which does not satisfy {req}"
                    )));
                }
            }
            wanted.push(name.to_string());
        }
        let mut plan = Vec::new();
        for entry in locked_order(lock, &wanted)? {
            plan.push(self.locked_record(entry, true).await?);
        }
        Ok(plan)
    }

    /// The signed record of a lock entry: its key is adopted as the name's owner where this
    /// node has none, the record is fetched when the catalogue lacks it, and it must have the
    /// lock's content id and publisher.
    async fn locked_record(
        self: &Arc<Self>,
        entry: &Locked,
        adopt: bool,
    ) -> Result<PackageRecord, Error> {
        let bad = |what: &str| Error::BadRequest(format!("{FILE_NAME}: {}: {what}", entry.name));
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
        // Only an install adopts; a dry run (`outdated`, `--dry-run`) changes nothing.
        let (n, k) = (name.clone(), locked_key);
        let state = self
            .catalogue
            .with_store(move |s| {
                if !adopt {
                    return Ok(s.db.name_state(&n)?);
                }
                let state = s.db.adopt_owner(&n, &k)?;
                s.refresh(std::slice::from_ref(&n))?;
                Ok(state)
            })
            .await?;
        if adopt {
            self.catalogue.refresh_names(vec![name.clone()]).await;
        }
        if let Some(owner) = state.owner().filter(|o| *o != locked_key) {
            return Err(Error::Conflict(format!(
                "{FILE_NAME} says {name} is published by {locked_key}, but this node trusts {owner} as its owner; if the lock is right, run `peerpack trust {name} {locked_key}` and install again"
            )));
        }
        let mut record = self.record_of(&name, &version).await?;
        if record.is_none() && matches!(crate::lookup::lookup(self, &name).await?, Lookup::Found) {
            record = self.record_of(&name, &version).await?;
        }
        // Older than the versions a lookup reads: ask for this one.
        if record.is_none() && crate::lookup::fetch_version(self, &name, &version).await? {
            record = self.record_of(&name, &version).await?;
        }
        let record = record.ok_or_else(|| {
            Error::NotFound(format!(
                "{FILE_NAME} locks {name} {version}, which is neither in the catalogue nor in the DHT"
            ))
        })?;
        if record.content_id != id {
            return Err(Error::Conflict(format!(
                "{FILE_NAME} locks {name} {version} to {id}, but its signed record says {}; refusing to install other bytes",
                record.content_id
            )));
        }
        if record.publisher.to_string() != entry.publisher {
            return Err(Error::Conflict(format!(
                "{FILE_NAME} says {name} {version} was signed by {}, but its record is signed by {}",
                entry.publisher, record.publisher
            )));
        }
        Ok(record)
    }

    /// What moved between `old` and the new plan, with the latest release known of each name.
    pub(super) async fn changes(
        self: &Arc<Self>,
        old: Option<&Lockfile>,
        plan: &[PackageRecord],
    ) -> Result<Vec<Change>, Error> {
        let mut moved: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
        for r in plan {
            let from = old
                .and_then(|l| l.get(r.name().as_str()))
                .map(|e| e.version.clone());
            let to = r.version().to_string();
            if from.as_deref() != Some(to.as_str()) {
                moved.insert(r.name().to_string(), (from, Some(to)));
            }
        }
        for e in old.map(|l| l.packages.as_slice()).unwrap_or_default() {
            if !plan.iter().any(|r| r.name().as_str() == e.name) {
                moved.insert(e.name.clone(), (Some(e.version.clone()), None));
            }
        }
        let names: Vec<String> = moved.keys().cloned().collect();
        let latest = self.latest_of(names).await?;
        Ok(moved
            .into_iter()
            .map(|(name, (from, to))| Change {
                latest: latest.get(&name).cloned(),
                name,
                from,
                to,
            })
            .collect())
    }

    /// The latest release known of each name (as search shows it).
    pub(super) async fn latest_of(
        self: &Arc<Self>,
        names: Vec<String>,
    ) -> Result<BTreeMap<String, String>, Error> {
        self.catalogue
            .with_store(move |s| {
                let mut out = BTreeMap::new();
                for n in names {
                    let Ok(name) = PackageName::new(&n) else {
                        continue;
                    };
                    if let Some(r) = s.db.latest(&name)? {
                        out.insert(n, r.version().to_string());
                    }
                }
                Ok(out)
            })
            .await
    }
}

/// The lock written for `plan`, the closure of `roots`.
pub(super) fn lock_of(roots: Vec<String>, to: Option<String>, plan: &[PackageRecord]) -> Lockfile {
    Lockfile {
        version: peerpack_api::lockfile::FORMAT,
        roots,
        to,
        packages: plan
            .iter()
            .map(|r| Locked {
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
            })
            .collect(),
    }
}

/// The lock entries `wanted` needs, dependencies first (depth-first over the lock's dependency
/// lists); an entry missing from the lock, or a cycle, is an error.
pub(super) fn locked_order<'a>(
    lock: &'a Lockfile,
    wanted: &[String],
) -> Result<Vec<&'a Locked>, Error> {
    fn visit<'a>(
        lock: &'a Lockfile,
        name: &str,
        state: &mut BTreeMap<&'a str, bool>,
        order: &mut Vec<&'a Locked>,
        path: &mut Vec<String>,
    ) -> Result<(), Error> {
        let entry = lock.get(name).ok_or_else(|| {
            Error::BadRequest(format!(
                "{FILE_NAME}: {} needs {name}, which is not locked; the lock file is incomplete",
                path.last().map_or("the command line", String::as_str)
            ))
        })?;
        match state.get(entry.name.as_str()) {
            Some(true) => return Ok(()),
            Some(false) => {
                path.push(name.to_owned());
                return Err(Error::BadRequest(format!(
                    "{FILE_NAME}: dependency cycle: {}",
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
    let mut order = Vec::new();
    let mut state = BTreeMap::new();
    for name in wanted {
        visit(lock, name, &mut state, &mut order, &mut Vec::new())?;
    }
    Ok(order)
}
