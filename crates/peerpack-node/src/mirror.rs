//! Mirroring: this node keeps, and provides, every version of the names it mirrors (a name, or
//! every name an owner key owns), now and as new versions arrive, within the cache quota. So a
//! package stays installable when its publisher goes offline, and a short-lived publisher (a CI
//! job) can hand its archives to a mirror and exit.

use std::sync::Arc;

use peerpack_api::{MirrorReport, MirrorRequest, MirrorView, Mirrored};
use peerpack_core::{PackageName, PackageRecord};
use peerpack_store::Mirror;

use crate::context::Context;
use crate::download;
use crate::error::Error;
use crate::lookup::Lookup;

fn view(rule: &Mirror) -> MirrorView {
    match rule {
        Mirror::Name(n) => MirrorView {
            name: Some(n.to_string()),
            owner: None,
        },
        Mirror::Owner(k) => MirrorView {
            name: None,
            owner: Some(k.to_string()),
        },
    }
}

/// A rule from the API's text: a key (`ed25519:…`) or a name.
pub fn parse_rule(text: &str) -> Result<Mirror, Error> {
    if text.starts_with("ed25519:") {
        Ok(Mirror::Owner(crate::names::parse_key(text)?))
    } else {
        Ok(Mirror::Name(crate::names::parse_spec(text)?.0))
    }
}

impl Context {
    /// Add a mirror rule and fetch what it covers now.
    #[tracing::instrument(skip(self))]
    pub async fn mirror(self: &Arc<Self>, request: MirrorRequest) -> Result<MirrorReport, Error> {
        let rule = match (&request.name, &request.owner) {
            (Some(n), None) => Mirror::Name(crate::names::parse_spec(n)?.0),
            (None, Some(k)) => Mirror::Owner(crate::names::parse_key(k)?),
            _ => {
                return Err(Error::BadRequest(
                    "give exactly one of `name` (a package to mirror) and `owner` (a key whose packages to mirror)".into(),
                ));
            }
        };
        if let Mirror::Name(name) = &rule {
            // A name the catalogue lacks is looked up; one nobody published yet is mirrored
            // from its first version on.
            let n = name.clone();
            let known = self
                .catalogue
                .with_store(move |s| Ok(!s.db.versions(&n)?.is_empty()))
                .await?;
            if !known && let Lookup::Contested(claims) = crate::lookup::lookup(self, name).await? {
                return Err(crate::names::contested(name, &claims));
            }
        }
        let r = rule.clone();
        let added = self
            .catalogue
            .with_store(move |s| Ok(s.db.add_mirror(&r)?))
            .await?;
        self.catalogue
            .mirroring
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let r = rule.clone();
        let names = self
            .catalogue
            .with_store(move |s| Ok(s.db.mirrored_names(&r)?))
            .await?;
        let mut versions = Vec::new();
        for name in names {
            versions.extend(self.mirror_name(&name).await?);
        }
        tracing::info!(rule = ?rule, added, versions = versions.len(), "mirroring");
        Ok(MirrorReport {
            rule: view(&rule),
            added,
            versions,
        })
    }

    /// Remove a mirror rule; its archives become ordinary cache (gc may remove them).
    pub async fn unmirror(self: &Arc<Self>, rule: &str) -> Result<MirrorView, Error> {
        let rule = parse_rule(rule)?;
        let r = rule.clone();
        let (removed, left) = self
            .catalogue
            .with_store(move |s| Ok((s.db.remove_mirror(&r)?, s.db.mirrors()?.len())))
            .await?;
        if !removed {
            return Err(Error::NotFound(format!(
                "{} is not mirrored here",
                match &rule {
                    Mirror::Name(n) => n.to_string(),
                    Mirror::Owner(k) => k.to_string(),
                }
            )));
        }
        self.catalogue
            .mirroring
            .store(left > 0, std::sync::atomic::Ordering::Relaxed);
        Ok(view(&rule))
    }

    /// Every mirror rule.
    pub async fn mirrors(self: &Arc<Self>) -> Result<Vec<MirrorView>, Error> {
        let rules = self.catalogue.with_store(|s| Ok(s.db.mirrors()?)).await?;
        Ok(rules.iter().map(view).collect())
    }

    /// Fetch every version of `name` not held here, newest first, while the mirrored archives
    /// fit the cache quota.
    async fn mirror_name(self: &Arc<Self>, name: &PackageName) -> Result<Vec<Mirrored>, Error> {
        let n = name.clone();
        let (mut versions, mut held_bytes) = self
            .catalogue
            .with_store(move |s| {
                let versions = s.db.versions(&n)?;
                let mut held = 0u64;
                for id in s.db.mirrored_content()? {
                    held += s.blobs.size(&id).unwrap_or(0);
                }
                Ok((versions, held))
            })
            .await?;
        versions.sort_by(|a, b| b.version().cmp(a.version()));
        let mut out = Vec::with_capacity(versions.len());
        for record in versions {
            let (state, reason) = if self.catalogue.blobs.contains(&record.content_id) {
                ("held", None)
            } else if held_bytes + record.archive_size > self.cache_quota {
                (
                    "skipped",
                    Some(format!(
                        "it would take the mirrored archives past the cache quota of {} bytes",
                        self.cache_quota
                    )),
                )
            } else {
                match self.mirror_fetch(&record).await {
                    Ok(()) => {
                        held_bytes += record.archive_size;
                        ("fetched", None)
                    }
                    Err(e) => ("failed", Some(e.to_string())),
                }
            };
            out.push(Mirrored {
                name: name.to_string(),
                version: record.version().to_string(),
                state: state.to_owned(),
                reason,
            });
        }
        Ok(out)
    }

    async fn mirror_fetch(self: &Arc<Self>, record: &PackageRecord) -> Result<(), Error> {
        let (id, size) = (record.content_id, record.archive_size);
        let (progress, _tracked) = self.transfers.downloads.track(id, size);
        download::fetch(self, id, size, progress).await?;
        Ok(())
    }
}

/// The mirror task: fetch the new versions of mirrored names as they reach the catalogue.
pub async fn task(inner: Arc<Context>) {
    loop {
        let names = inner.catalogue.next_added().await;
        let mirrored = {
            let names: Vec<PackageName> = names.into_iter().collect();
            inner
                .catalogue
                .with_store(move |s| {
                    let mut out = Vec::new();
                    for n in names {
                        if s.db.is_mirrored(&n)? {
                            out.push(n);
                        }
                    }
                    Ok(out)
                })
                .await
        };
        match mirrored {
            Ok(names) => {
                for name in names {
                    match inner.mirror_name(&name).await {
                        Ok(v) => {
                            for m in v.iter().filter(|m| m.state != "held") {
                                tracing::info!(name = %m.name, version = %m.version, state = %m.state, reason = ?m.reason, "mirror");
                            }
                        }
                        Err(e) => tracing::warn!(%name, error = %e, "mirroring failed"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the mirror rules"),
        }
    }
}
