//! Garbage collection of the archive cache, and pins.
//!
//! Kept always: archives of versions this node's publisher key owns, archives installed in a
//! directory that still exists, archives of pinned versions, and archives of mirrored names
//! (which `mirror` keeps within the quota itself). The rest is the cache: while
//! it is larger than the quota, the least recently used archive goes first.

use std::collections::HashSet;
use std::sync::Arc;

use peerpack_core::{ContentId, PackageName, Version};

use crate::context::Context;
use crate::error::Error;
use crate::names::parse_spec;

pub use peerpack_api::{GcReport, Pin, Removed};

impl Context {
    /// Remove unprotected archives down to the cache quota (`dry_run`: only report).
    #[tracing::instrument(skip(self))]
    pub async fn gc(self: &Arc<Self>, dry_run: bool) -> Result<GcReport, Error> {
        let publisher = self.publisher.public();
        let quota = self.cache_quota;
        let (report, removed_ids) = self
            .catalogue
            .with_store(move |s| {
                let mut protected: HashSet<ContentId> =
                    s.db.content_owned_by(&publisher)?.into_iter().collect();
                protected.extend(s.db.pinned_content()?);
                protected.extend(s.db.mirrored_content()?);
                for install in s.db.installs()? {
                    if std::path::Path::new(&install.path).is_dir() {
                        protected.insert(install.content_id);
                    } else if !dry_run {
                        s.db.forget_install(&install.path)?;
                    }
                }
                let uses: std::collections::HashMap<ContentId, (u64, i64)> =
                    s.db.blob_uses()?
                        .into_iter()
                        .map(|u| (u.content_id, (u.size, u.last_used)))
                        .collect();
                let mut candidates = Vec::new();
                let (mut protected_n, mut protected_bytes, mut cached) = (0u64, 0u64, 0u64);
                for id in s.blobs.list().map_err(peerpack_store::Error::from)? {
                    let (size, last_used) = match uses.get(&id) {
                        Some(u) => *u,
                        None => (s.blobs.size(&id).unwrap_or(0), 0),
                    };
                    if protected.contains(&id) {
                        protected_n += 1;
                        protected_bytes += size;
                    } else {
                        cached += size;
                        candidates.push((last_used, id, size));
                    }
                }
                candidates.sort();
                let mut removed = Vec::new();
                let mut ids = Vec::new();
                let mut freed = 0u64;
                for (last_used, id, size) in candidates {
                    if cached <= quota {
                        break;
                    }
                    let packages =
                        s.db.records_with_content(&id)?
                            .iter()
                            .map(|r| format!("{}@{}", r.name(), r.version()))
                            .collect();
                    if !dry_run {
                        s.blobs.remove(&id).map_err(peerpack_store::Error::from)?;
                        s.db.forget_blob(&id)?;
                    }
                    cached -= size;
                    freed += size;
                    ids.push(id);
                    removed.push(Removed {
                        content_id: id.to_string(),
                        archive_size: size,
                        packages,
                        last_used,
                    });
                }
                Ok((
                    GcReport {
                        dry_run,
                        quota,
                        removed,
                        freed,
                        protected: protected_n,
                        protected_bytes,
                        cached_bytes: cached,
                    },
                    ids,
                ))
            })
            .await?;
        if !dry_run {
            for id in removed_ids {
                let _ = self
                    .net
                    .stop_providing(peerpack_net::protocol::provider_key(&id))
                    .await;
            }
        }
        Ok(report)
    }

    /// Pin `NAME` (its latest version) or `NAME@VERSION`. Returns the pin.
    pub async fn pin(self: &Arc<Self>, spec: &str) -> Result<Pin, Error> {
        let (name, version) = self.pinned_version(spec).await?;
        let (n, v) = (name.clone(), version.clone());
        self.catalogue
            .with_store(move |s| Ok(s.db.pin(&n, &v)?))
            .await?;
        // A pin keeps an archive here: fetch it if it is not here yet.
        if let Some(record) = self.record_of(&name, &version).await?
            && !self.catalogue.blobs.contains(&record.content_id)
        {
            let (id, size) = (record.content_id, record.archive_size);
            let (progress, _tracked) = self.transfers.downloads.track(id, size);
            crate::download::fetch(self, id, size, progress)
                .await
                .map_err(|e| match e.kind() {
                    crate::error::Kind::Unavailable => Error::Unavailable(format!(
                        "pinned {name}@{version}, but its archive could not be fetched yet: {e}"
                    )),
                    _ => e,
                })?;
        }
        Ok(Pin {
            name: name.to_string(),
            version: version.to_string(),
        })
    }

    /// Remove the pin of `NAME@VERSION` (or every pin of `NAME`). Returns the pins removed.
    pub async fn unpin(self: &Arc<Self>, spec: &str) -> Result<Vec<Pin>, Error> {
        let (name, req) = parse_spec(spec)?;
        let removed = self
            .catalogue
            .with_store(move |s| {
                let mut removed = Vec::new();
                for (n, v) in s.db.pins()? {
                    let Ok(version) = Version::parse(&v) else {
                        continue;
                    };
                    if n == name.as_str() && req.as_ref().is_none_or(|r| r.matches(&version)) {
                        s.db.unpin(&name, &version)?;
                        removed.push(Pin {
                            name: n,
                            version: v,
                        });
                    }
                }
                Ok(removed)
            })
            .await?;
        if removed.is_empty() {
            return Err(Error::NotFound(format!("{spec} is not pinned")));
        }
        Ok(removed)
    }

    /// Every pin.
    pub async fn pins(self: &Arc<Self>) -> Result<Vec<Pin>, Error> {
        self.catalogue
            .with_store(|s| {
                Ok(s.db
                    .pins()?
                    .into_iter()
                    .map(|(name, version)| Pin { name, version })
                    .collect())
            })
            .await
    }

    async fn pinned_version(self: &Arc<Self>, spec: &str) -> Result<(PackageName, Version), Error> {
        let (name, req) = parse_spec(spec)?;
        let n = name.clone();
        let versions = self
            .catalogue
            .with_store(move |s| Ok(s.versions(&n)?))
            .await?;
        let chosen = versions
            .iter()
            .map(|r| r.version().clone())
            .find(|v| req.as_ref().is_none_or(|r| r.matches(v)));
        chosen.map(|v| (name.clone(), v)).ok_or_else(|| {
            Error::NotFound(if versions.is_empty() {
                format!("no package named {name} is known")
            } else {
                format!("no known version of {name} matches {spec:?}")
            })
        })
    }
}
