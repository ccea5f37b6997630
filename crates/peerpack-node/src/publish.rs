//! Publishing: pack, sign, store, announce; then put in the DHT and provide, in the
//! background unless asked to wait.
//!
//! The announcement is the fast path: gossip reaches every subscribed peer within a few
//! milliseconds, and that is what makes a package searchable. The DHT copies and the provider
//! record serve peers that look later; at a hundred nodes their writes take tens to hundreds
//! of milliseconds, so a publish does not wait for them unless asked (`wait_dht`, or
//! `wait_replicas`, which needs the provider record out). A write lost to a shutdown is made
//! again by the next republish round, which runs once the restarted node has a peer.

use std::path::PathBuf;
use std::sync::Arc;

use peerpack_core::record::{IndexEntry, RecordFields};
use peerpack_core::{ContentId, IndexRecord, PackageRecord, archive};
use peerpack_net::protocol;
use peerpack_store::db::now;

use crate::context::Context;
use crate::error::{Error, Kind};

/// What a publish did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Published {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Content id of the archive.
    #[schema(value_type = String)]
    pub content_id: ContentId,
    /// Archive size in bytes.
    pub archive_size: u64,
    /// Whether this exact version was already published (a re-announce).
    pub republished: bool,
    /// Remote peers that stored the package record in the DHT; `None` when the DHT writes
    /// went on in the background (publish without `wait_dht`).
    pub dht_peers: Option<usize>,
    /// Peers subscribed to announcements when it went out.
    pub announced_to: usize,
    /// Other peers providing the archive (only when asked to wait for them).
    pub replicas: Option<usize>,
}

/// How to publish.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublishOptions {
    /// Publish even files that look like secrets (private keys, credential files).
    pub allow_secrets: bool,
    /// Publish even when the dependencies cannot be resolved on this node.
    pub allow_unresolved: bool,
    /// Return only once this many other peers provide the archive.
    pub wait_replicas: usize,
    /// How long to wait for them.
    pub wait_timeout: std::time::Duration,
    /// Return only once the DHT writes (package record, index record, provider record) are
    /// done, with the number of peers that stored the package record.
    pub wait_dht: bool,
}

/// Default [`PublishOptions::wait_timeout`].
pub const WAIT_REPLICAS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Publish the package in `dir`, refusing files that look like secrets.
pub async fn publish(inner: &Arc<Context>, dir: PathBuf) -> Result<Published, Error> {
    publish_with(inner, dir, PublishOptions::default()).await
}

/// Publish the package in `dir`.
#[tracing::instrument(
    skip(inner),
    fields(dir = %dir.display(), package, version, content_id, bytes, result)
)]
pub async fn publish_with(
    inner: &Arc<Context>,
    dir: PathBuf,
    options: PublishOptions,
) -> Result<Published, Error> {
    let started = std::time::Instant::now();
    let published = publish_untimed(inner, dir, options).await;
    let result = match &published {
        Ok(_) => "ok",
        Err(e) => crate::telemetry::error_kind(e),
    };
    inner.metrics.publish(started.elapsed(), result);
    let span = tracing::Span::current();
    span.record("result", result);
    if let Ok(p) = &published {
        span.record("package", p.name.as_str())
            .record("version", p.version.as_str())
            .record("content_id", p.content_id.to_string())
            .record("bytes", p.archive_size);
    }
    published
}

async fn publish_untimed(
    inner: &Arc<Context>,
    dir: PathBuf,
    options: PublishOptions,
) -> Result<Published, Error> {
    if !options.allow_unresolved {
        check_dependencies(inner, &dir).await?;
    }
    // Sign on top of the newest index the network holds for the name, not only this node's
    // copy: the key may have published from another machine, or from a data directory since
    // lost (a fresh one with an imported key would otherwise start again at seq 1 and be
    // refused everywhere as a rollback), and another key may own the name. Once this node
    // holds the name's index signed by its own key, gossip and catalogue sync keep that copy
    // current, and the DHT read (a full Kademlia query) is skipped.
    let key = inner.publisher.clone();
    if let Ok(manifest) = peerpack_core::Manifest::from_dir(&dir)
        && !holds_own_index(inner, &manifest.name).await
        && let Err(e) = crate::lookup::lookup(inner, &manifest.name).await
    {
        tracing::info!(name = %manifest.name, error = %e, "could not read the name's index before publishing");
    }
    let self_id = inner.peer_id.to_string();
    // Batched: the search index takes the new version with the next batch, so the call waits
    // for no index commit (many fsyncs, slow while peers commit the same announcement); a
    // search on this node waits for that batch, so it finds the package at once.
    let (record, index, republished) = inner.catalogue
        .with_store_batched(move |s| {
            if !options.allow_secrets {
                refuse_secrets(&dir)?;
            }
            let (bytes, summary) = archive::pack(&dir).map_err(|e| Error::BadRequest(crate::error::with_causes(&e)))?;
            let m = summary.manifest;
            match s.db.name_state(&m.name)? {
                peerpack_store::NameState::Owned { owner, source } => {
                    peerpack_core::record::check_owner(&m.name, &owner, &key.public()).map_err(
                        |e| Error::Conflict(format!("{e} ({} on this node); choose another name", source.as_str())),
                    )?;
                }
                peerpack_store::NameState::Contested => {
                    return Err(Error::Conflict(format!(
                        "{} is contested on this node: other keys claim it; if it is yours, run `peerpack trust {} {}` first",
                        m.name,
                        m.name,
                        key.public()
                    )));
                }
                peerpack_store::NameState::Unknown => {}
            }
            let existing = s.db.record(&m.name, &m.version)?;
            let republished = match &existing {
                Some(prev) if prev.content_id == summary.content_id => true,
                Some(prev) => {
                    return Err(Error::Conflict(format!(
                        "{} {} is already published with content {}; published versions are immutable, so bump the version",
                        m.name, m.version, prev.content_id
                    )));
                }
                None => false,
            };
            // The archive is written first (an orphan archive after a crash is harmless and
            // rewritten by the next publish); then the record, the index record and the
            // provider row are stored in one transaction, so a crash leaves all or none.
            s.blobs
                .put_expecting(&summary.content_id, &bytes)
                .map_err(peerpack_store::Error::from)?;
            let archive_len = bytes.len() as u64;
            let (record, index) = s.db.atomically(|db| -> Result<_, Error> {
                db.touch_blob(&summary.content_id, archive_len)?;
                let record = match existing {
                    Some(prev) => prev,
                    None => {
                        let record = PackageRecord::sign(
                            RecordFields {
                                manifest: m,
                                content_id: summary.content_id,
                                archive_size: summary.size,
                                seq: 1,
                                published_at: now().max(0) as u64,
                            },
                            &key,
                        )
                        .map_err(|e| Error::BadRequest(e.to_string()))?;
                        if db.insert_record(&record)? == peerpack_store::Inserted::Disputed {
                            return Err(Error::Conflict(format!(
                                "{} is owned by another key on this node; choose another name",
                                record.name()
                            )));
                        }
                        record
                    }
                };
                let known = db.index_record(record.name())?;
                // A republish reuses the index record when it already lists this version
                // with this record; otherwise (a new version, or a store from before
                // publishes were one transaction) the owner signs a new one.
                let listed = known.as_ref().is_some_and(|k| {
                    k.entry(record.version())
                        .is_some_and(|e| e.record_hash == record.hash())
                });
                let index = match known {
                    Some(idx) if listed => idx,
                    known => {
                        // A new version keeps what the owner said of the others (yanks,
                        // deprecations).
                        let entries = db
                            .versions(record.name())?
                            .into_iter()
                            .map(|r| {
                                let mut e = IndexEntry::new(r.version().clone(), r.hash());
                                if let Some(old) = known.as_ref().and_then(|k| k.entry(r.version())) {
                                    e.yanked.clone_from(&old.yanked);
                                    e.deprecated.clone_from(&old.deprecated);
                                }
                                e
                            })
                            .collect();
                        let seq = known.map_or(1, |i| i.seq + 1);
                        let idx = IndexRecord::sign(record.name().clone(), entries, seq, now().max(0) as u64, &key)
                            .map_err(|e| Error::Internal(e.to_string()))?;
                        db.insert_index(&idx)?;
                        idx
                    }
                };
                db.add_provider(&record.content_id, &self_id)?;
                Ok((record, index))
            })?;
            Ok((record, index, republished))
        })
        .await?;

    // Gossip first: it is what makes the package searchable everywhere. The network actor
    // takes commands in order, so the announcement leaves before the DHT writes start.
    let announced_to = inner
        .net
        .announce(record.encode())
        .await
        .unwrap_or_else(|e| {
            tracing::info!(error = %e, "announcement not gossiped; peers will learn it by sync");
            0
        });
    let writes = dht_writes(inner.clone(), record.clone(), index);
    let dht_peers = if options.wait_dht || options.wait_replicas > 0 {
        Some(writes.await?)
    } else {
        // A trace of its own, linked to the publish's: the publish span ends when the call
        // returns, not when the writes do.
        let span = tracing::info_span!(
            parent: None,
            "publish.dht",
            package = %record.name(),
            version = %record.version(),
            dht_peers = tracing::field::Empty,
            result = tracing::field::Empty,
        );
        span.follows_from(tracing::Span::current());
        span.in_scope(|| {
            inner.supervisor.spawn(async move {
                let span = tracing::Span::current();
                match writes.await {
                    Ok(n) => span.record("dht_peers", n).record("result", "ok"),
                    Err(e) => {
                        tracing::warn!(error = %e, "providing the archive failed; the next republish round tries again");
                        span.record("result", crate::telemetry::error_kind(&e))
                    }
                };
            })
        });
        None
    };
    let replicas = if options.wait_replicas > 0 {
        Some(wait_for_replicas(inner, &record, options).await?)
    } else {
        None
    };
    Ok(Published {
        replicas,
        name: record.name().to_string(),
        version: record.version().to_string(),
        content_id: record.content_id,
        archive_size: record.archive_size,
        republished,
        dht_peers,
        announced_to,
    })
}

/// Whether this node holds `name`'s index record signed by its own publisher key.
async fn holds_own_index(inner: &Arc<Context>, name: &peerpack_core::PackageName) -> bool {
    let key = inner.publisher.public();
    let name = name.clone();
    inner
        .catalogue
        .with_store(move |s| Ok(s.db.index_record(&name)?))
        .await
        .ok()
        .flatten()
        .is_some_and(|idx| idx.publisher == key)
}

/// Put the package record and the index record in the DHT and provide the archive, all at
/// once. Answers how many remote peers stored the package record; only providing failing
/// is an error (a put that reached no one is logged: the republish rounds put it again).
async fn dht_writes(
    inner: Arc<Context>,
    record: PackageRecord,
    index: IndexRecord,
) -> Result<usize, Error> {
    let (put_record, put_index, providing) = futures::join!(
        inner.net.put_record(
            protocol::record_key(record.name(), record.version()),
            record.encode()
        ),
        inner
            .net
            .put_record(protocol::index_key(record.name()), index.encode()),
        inner
            .net
            .start_providing(protocol::provider_key(&record.content_id)),
    );
    providing?;
    if let Err(e) = put_index {
        tracing::warn!(error = %e, "DHT put of the index record failed");
    }
    Ok(put_record.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "DHT put of the package record failed");
        0
    }))
}

/// Wait until `options.wait_replicas` other peers provide `record`'s archive, as the DHT
/// says; answer how many do.
async fn wait_for_replicas(
    inner: &Arc<Context>,
    record: &PackageRecord,
    options: PublishOptions,
) -> Result<usize, Error> {
    let deadline = tokio::time::Instant::now() + options.wait_timeout;
    let key = protocol::provider_key(&record.content_id);
    loop {
        let providers = inner
            .net
            .get_providers(key.clone(), std::time::Duration::from_secs(5))
            .await
            .unwrap_or_default();
        let seen = providers.iter().filter(|p| **p != inner.peer_id).count();
        if seen >= options.wait_replicas {
            tracing::info!(replicas = seen, "replicated");
            return Ok(seen);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Unavailable(format!(
                "published {} {}, but {seen} of the {} other peer(s) asked for provide it after {} s; it stays published here, and reaches others as they sync or mirror it",
                record.name(),
                record.version(),
                options.wait_replicas,
                options.wait_timeout.as_secs()
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Refuse a package whose dependencies cannot be resolved here (as an install would resolve
/// them, asking the DHT for names the catalogue lacks): a published version can never change,
/// so a dependency that can never be met breaks it for good. A manifest that does not parse
/// is left for packing to report.
async fn check_dependencies(inner: &Arc<Context>, dir: &std::path::Path) -> Result<(), Error> {
    let Ok(manifest) = peerpack_core::Manifest::from_dir(dir) else {
        return Ok(());
    };
    if manifest.dependencies.is_empty() {
        return Ok(());
    }
    let specs: Vec<String> = manifest
        .dependencies
        .iter()
        .map(|(n, r)| format!("{n}@{r}"))
        .collect();
    match inner.plan(&specs, &[], false).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind(), Kind::NotFound | Kind::BadRequest | Kind::Conflict) => {
            Err(Error::BadRequest(format!(
                "{} {} has dependencies that cannot be resolved on this node: {e}. A published version can never change; publish the dependencies first, or pass --allow-unresolved",
                manifest.name, manifest.version
            )))
        }
        Err(e) => Err(e),
    }
}

/// Refuse a package some of whose files look like secrets: a published version can never be
/// withdrawn.
fn refuse_secrets(dir: &std::path::Path) -> Result<(), Error> {
    let suspects =
        archive::suspects(dir).map_err(|e| Error::BadRequest(crate::error::with_causes(&e)))?;
    if suspects.is_empty() {
        return Ok(());
    }
    let mut text = format!(
        "refusing to publish {}: {} file(s) look like secrets, and a published version can never be withdrawn:",
        dir.display(),
        suspects.len()
    );
    for s in &suspects {
        text.push_str(&format!("\n  {} ({})", s.path, s.why));
    }
    text.push_str(&format!(
        "\nLeave them out with {} (gitignore syntax), or publish with --allow-secrets if they are meant to ship.",
        archive::IGNORE_FILE
    ));
    Err(Error::BadRequest(text))
}
