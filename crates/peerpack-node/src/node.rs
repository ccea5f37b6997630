//! The running node: store, network, peer book and API wired together.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use peerpack_core::PublisherKey;
use peerpack_net::p2p::{Multiaddr, PeerId, identity};
use peerpack_net::{Event, protocol};
use peerpack_store::Store;
use tokio::sync::mpsc;

use crate::catalogue::Catalogue;
use crate::config::Config;
use crate::context::Context;
use crate::data_dir::{DataDir, RuntimeInfo};
use crate::error::Error;
use crate::reputation::{PeerBook, Peers};
use crate::supervisor::{CoreTasks, Supervisor};
use crate::transfer::{RequestRate, ServeSlots, Transfers};

/// How often changed peer rows are written to the store.
const PEER_FLUSH: Duration = Duration::from_secs(5);
/// How often the node re-syncs its catalogue with one connected peer (`sync::anti_entropy`).
const RESYNC: Duration = Duration::from_secs(60);

/// A running node. Stop it with [`Node::shutdown`].
pub struct Node {
    inner: Arc<Context>,
    core: CoreTasks,
    data_dir: DataDir,
    api_addr: SocketAddr,
}

/// Save the peer rows that changed.
async fn flush_peers(ctx: &Context) {
    let rows = ctx.peers.with(PeerBook::take_dirty);
    if rows.is_empty() {
        return;
    }
    if let Err(e) = ctx
        .catalogue
        .with_store(move |s| Ok(s.db.save_peers(&rows)?))
        .await
    {
        tracing::warn!(error = %e, "could not save peer records");
    }
}

fn load_or_create_node_key(path: &Path) -> Result<identity::Keypair, Error> {
    let internal = |what: &str, e: &dyn std::fmt::Display| {
        Error::Internal(format!("node key {}: {what}: {e}", path.display()))
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            identity::Keypair::from_protobuf_encoding(&bytes).map_err(|e| internal("malformed", &e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = identity::Keypair::generate_ed25519();
            let bytes = key
                .to_protobuf_encoding()
                .map_err(|e| internal("encode", &e))?;
            peerpack_core::fs::atomic_write(path, &bytes).map_err(|e| internal("write", &e))?;
            Ok(key)
        }
        Err(e) => Err(internal("read", &e)),
    }
}

fn load_or_create_publisher(path: &Path) -> Result<PublisherKey, Error> {
    match PublisherKey::load(path) {
        Ok(k) => Ok(k),
        Err(peerpack_core::keys::KeyError::NotFound(_)) => {
            let key = PublisherKey::generate().map_err(|e| Error::Internal(e.to_string()))?;
            key.save(path, false)
                .map_err(|e| Error::Internal(format!("{e:#}")))?;
            tracing::info!(key = %key.public(), path = %path.display(), "created publisher key");
            Ok(key)
        }
        Err(e) => Err(Error::Internal(e.to_string())),
    }
}

fn check_bootstrap(addrs: &[Multiaddr]) -> Result<(), Error> {
    for a in addrs {
        if peerpack_net::peer_id_of(a).is_none() {
            return Err(Error::BadRequest(
                peerpack_net::Error::MissingPeerId(a.clone()).to_string(),
            ));
        }
    }
    Ok(())
}

impl Node {
    /// Start a node: open the store, start the network and the API, dial the bootstrap peers
    /// and write `node.json`.
    #[tracing::instrument(skip_all, fields(data_dir = %config.data_dir.display()))]
    pub async fn start(config: Config) -> Result<Self, Error> {
        check_bootstrap(&config.bootstrap)?;
        let data_dir = DataDir::new(&config.data_dir);
        std::fs::create_dir_all(data_dir.root())
            .map_err(|e| Error::io(format!("data directory {}", data_dir.root().display()), e))?;
        if !config.api.ip().is_loopback() {
            if !config.api_public {
                return Err(Error::BadRequest(format!(
                    "refusing to serve the API on {}, which is not a loopback address: anyone who can reach it could read the node's state; pass --api-public (or [api] public = true) if you mean it",
                    config.api
                )));
            }
            tracing::warn!(api = %config.api, "serving the API on a non-loopback address; mutating calls still need the token in DATA_DIR/api-token");
        }
        let api_token = crate::data_dir::load_or_create_api_token(&data_dir).map_err(|e| {
            Error::Internal(format!(
                "API token {}: {e}",
                data_dir.api_token_file().display()
            ))
        })?;
        let publisher = load_or_create_publisher(&data_dir.publisher_key())?;
        let keypair = load_or_create_node_key(&data_dir.node_key())?;
        let root = data_dir.root().to_owned();
        let curators = config.curators.clone();
        // The store's lock decides whether another node runs here: a node.json left by a
        // node that died (even one whose pid now belongs to another process) blocks nothing.
        let store = match tokio::task::spawn_blocking(move || {
            let mut store = Store::open(&root)?;
            store.set_curators(curators)?;
            Ok::<_, peerpack_store::Error>(store)
        })
        .await
        .map_err(|e| Error::task("opening the store", e))?
        {
            Ok(store) => store,
            Err(peerpack_store::Error::InUse { .. })
                if let Some(running) = RuntimeInfo::read(&data_dir) =>
            {
                return Err(Error::Conflict(format!(
                    "a node (pid {}, API {}) is already running with data directory {}; stop it first (kill {}), or use another --data-dir",
                    running.pid,
                    running.api,
                    data_dir.root().display(),
                    running.pid
                )));
            }
            Err(e) => return Err(e.into()),
        };
        // Everything read from the store before anything listens: a bad database stops the
        // start before the network or the API exist.
        let peer_rows = store.db.load_peers()?;
        // A node told to keep no unpacked trees drops those it kept before.
        if config.install_link == peerpack_store::unpacked::LinkMode::Extract {
            store.blobs.unpacked().sweep(|_| false);
        }
        // The DHT serves the catalogue's own rows and keeps provider records in the store,
        // through connections of its own; it provides every archive held.
        let provided = store
            .blobs
            .list()
            .map_err(peerpack_store::Error::from)?
            .iter()
            .map(protocol::provider_key)
            .collect();
        let (backing, dht_writer) =
            crate::dht_backing::StoreBacking::open(data_dir.root(), provided)?;
        let catalogue = Catalogue::new(store)?;

        let mut net_config = peerpack_net::Config::new(keypair, config.listen.clone());
        net_config.policy = config.policy;
        net_config.external_addrs = config.external.clone();
        net_config.backing = peerpack_net::Backing::new(backing);
        net_config.query_timeout = config.query_timeout;
        let telemetry = config
            .telemetry
            .clone()
            .unwrap_or_else(|| Arc::new(crate::telemetry::Telemetry::new()));
        net_config.meter = telemetry.meter().clone();
        net_config.registry = telemetry.registry();
        net_config.idle_timeout = config.idle_timeout;
        net_config.max_peers = config.max_peers;
        net_config.max_provider_records = config.max_provider_records;
        net_config.trim_grace = config.trim_grace;
        let spawned = peerpack_net::spawn(net_config).await?;
        let listener = tokio::net::TcpListener::bind(config.api)
            .await
            .map_err(|e| {
                Error::BadRequest(format!("cannot listen for the API on {}: {e}", config.api))
            })?;
        let api_addr = listener
            .local_addr()
            .map_err(|e| Error::io("the API's address", e))?;

        catalogue.attach_net(spawned.handle.clone());
        let node_metrics =
            crate::telemetry::NodeMetrics::new(telemetry.meter(), catalogue.records.clone());
        catalogue.attach_metrics(node_metrics.clone());
        let inner = Arc::new(Context {
            catalogue,
            transfers: Transfers::new(
                config.upload_limit,
                ServeSlots::new(
                    crate::sync::MAX_SYNC_SERVING,
                    crate::sync::MAX_SYNC_SERVING_PER_PEER,
                ),
                RequestRate::new(crate::sync::SYNC_BURST, crate::sync::SYNC_PER_SECOND),
                config.min_provider_score,
            ),
            peers: Peers::new(PeerBook::from_rows(peer_rows), spawned.handle.clone()),
            net: spawned.handle.clone(),
            publisher,
            peer_id: spawned.handle.local_peer_id(),
            listen_addrs: spawned.listen_addrs.clone(),
            policy: spawned.policy,
            started: Instant::now(),
            api_url: format!("http://{api_addr}"),
            api_token,
            catalogue_sync: config.catalogue_sync,
            cache_quota: config.cache_quota,
            install_link: config.install_link,
            curators: config.curators.clone(),
            curators_fetched: std::sync::atomic::AtomicBool::new(false),
            supervisor: Supervisor::default(),
            health: crate::health::Health::new(&config.bootstrap),
            dht_writer,
            republish: crate::republish::Schedule::default(),
            metrics: node_metrics.clone(),
            web: Default::default(),
            telemetry,
        });

        // Peers blocked before a restart stay blocked.
        inner.peers.enforce_blocks().await;

        let mut core = CoreTasks::default();
        core.spawn("network events", event_task(inner.clone(), spawned.events));
        core.spawn("periodic", periodic_task(inner.clone()));
        core.spawn("mirror", crate::mirror::task(inner.clone()));
        let (indexer, stop) = (inner.clone(), inner.supervisor.token());
        core.spawn(
            "indexer",
            async move { indexer.catalogue.indexer(stop).await },
        );
        // Dials the bootstrap peers at once, then retries the unreachable ones with backoff.
        core.spawn("health", crate::health::task(inner.clone()));
        core.spawn(
            "republish",
            crate::republish::task(inner.clone(), config.republish),
        );
        let router = crate::api::router(inner.clone());
        let api_stop = inner.supervisor.token();
        core.spawn("API", async move {
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(api_stop.cancelled_owned())
                .await
            {
                tracing::error!(error = %e, "API server failed");
            }
        });

        let url = inner.api_url.clone();
        inner
            .catalogue
            .with_store(move |s| {
                s.announce_api(&url);
                Ok(())
            })
            .await?;
        let node = Self {
            inner,
            core,
            data_dir,
            api_addr,
        };
        let runtime = RuntimeInfo {
            peer_id: node.inner.peer_id.to_string(),
            listen_addrs: node
                .inner
                .listen_addrs
                .iter()
                .map(ToString::to_string)
                .collect(),
            api: node.inner.api_url.clone(),
            pid: std::process::id(),
        };
        crate::data_dir::write_runtime(&runtime, &node.data_dir).map_err(|e| {
            Error::Internal(format!(
                "cannot write {}: {e}",
                node.data_dir.runtime_file().display()
            ))
        })?;
        tracing::info!(peer_id = %node.inner.peer_id, api = %node.inner.api_url, "node ready");
        Ok(node)
    }

    /// Shared state, for in-process callers (tests, the demo).
    pub fn inner(&self) -> &Arc<Context> {
        &self.inner
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// Listen addresses, each ending in `/p2p/<id>`.
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.inner.listen_addrs
    }

    /// The API's base URL (`http://127.0.0.1:PORT`).
    pub fn api_url(&self) -> &str {
        &self.inner.api_url
    }

    /// The API's socket address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The data directory.
    pub fn data_dir(&self) -> &DataDir {
        &self.data_dir
    }

    /// Wait until a core task of the node (network events, the periodic task, the API
    /// server) ends or panics, and answer why. A node whose core task ended no longer reacts
    /// to its peers or its users: stop it ([`Node::shutdown`]) and report the error.
    pub async fn failed(&mut self) -> Error {
        let reason = self.core.failed().await;
        tracing::error!(%reason, "the node is broken");
        Error::Internal(reason)
    }

    /// Stop everything, save peer records and remove `node.json`. Spawned work is cancelled
    /// and awaited; core tasks are stopped.
    pub async fn shutdown(mut self) {
        let left = self.inner.supervisor.shutdown().await;
        flush_peers(&self.inner).await;
        let _ = self.inner.net.shutdown().await;
        self.core.stop().await;
        RuntimeInfo::remove(&self.data_dir);
        tracing::info!(tasks_left = left, "node stopped");
    }
}

async fn event_task(inner: Arc<Context>, mut events: mpsc::Receiver<Event>) {
    while let Some(event) = events.recv().await {
        on_event(&inner, event).await;
    }
}

async fn on_event(inner: &Arc<Context>, event: Event) {
    match event {
        Event::Announcement {
            topic,
            source,
            message_id,
            data,
            origin,
        } => {
            use tracing::Instrument;
            // One span per message: its validation (the store's work, any refusal) is under
            // it, and its result says what gossipsub was told.
            let span = tracing::info_span!(
                "gossip",
                topic = topic.name(),
                peer = %source,
                origin = origin.as_ref().map(tracing::field::display),
                bytes = data.len(),
                result = tracing::field::Empty,
            );
            let (verdict, owners_changed) = async {
                match topic {
                    protocol::Topic::Packages => (
                        crate::ingest::announcement(inner, data, source).await,
                        Vec::new(),
                    ),
                    protocol::Topic::Indexes => (
                        crate::ingest::index_announcement(inner, data, source).await,
                        Vec::new(),
                    ),
                    protocol::Topic::Curators => {
                        crate::ingest::curator_announcement(inner, data, source).await
                    }
                }
            }
            .instrument(span.clone())
            .await;
            // The lookups a curator list calls for are work of their own, outside the span.
            crate::lookup::look_up_new_owners(inner, owners_changed);
            let result = match verdict {
                peerpack_net::MessageAcceptance::Accept => "accept",
                peerpack_net::MessageAcceptance::Reject => "reject",
                peerpack_net::MessageAcceptance::Ignore => "ignore",
            };
            span.record("result", result);
            inner.metrics.gossip(topic.name(), result);
            let _ = inner.net.report(message_id, source, verdict).await;
        }
        Event::InboundRecord { source, record } => {
            let owners_changed = crate::ingest::inbound_dht_record(inner, source, record).await;
            crate::lookup::look_up_new_owners(inner, owners_changed);
        }
        Event::SyncRequested {
            peer,
            request,
            channel,
        } => {
            let inner2 = inner.clone();
            inner.supervisor.spawn(async move {
                crate::sync::answer(
                    &inner2.catalogue,
                    &inner2.transfers,
                    &inner2.net,
                    peer,
                    request,
                    channel,
                )
                .await
            });
        }
        Event::BlobRequested {
            peer,
            request,
            channel,
        } => {
            let inner2 = inner.clone();
            inner.supervisor.spawn(async move {
                crate::serve::blob(
                    &inner2.catalogue,
                    &inner2.transfers,
                    &inner2.net,
                    peer,
                    request,
                    channel,
                )
                .await
            });
        }
        Event::Connected {
            peer,
            address,
            first,
        } => inner.peers.with(|b| b.connected(peer, &address, first)),
        Event::Disconnected { peer } => inner.peers.with(|b| b.disconnected(peer)),
        Event::Identified {
            peer,
            agent,
            protocol_version,
            addresses,
            peerpack,
        } => {
            inner
                .peers
                .with(|b| b.identified(peer, agent, protocol_version, &addresses));
            if peerpack && inner.catalogue_sync {
                let inner2 = inner.clone();
                inner
                    .supervisor
                    .spawn(async move { crate::sync::on_identified(&inner2, peer).await });
            }
            // The first peer met is the first chance to read the trusted curators' lists.
            if peerpack
                && !inner.curators.is_empty()
                && !inner
                    .curators_fetched
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                let inner2 = inner.clone();
                inner
                    .supervisor
                    .spawn(async move { crate::lookup::fetch_curators(&inner2).await });
            }
        }
        Event::Ping { peer, rtt } => inner.peers.with(|b| b.ping(peer, rtt.as_secs_f64() * 1e3)),
        // A provider is a peer that announced the archive with ADD_PROVIDER (or served it):
        // never one that merely gossiped a record.
        Event::ProviderAdded { peer, content_id } => {
            let peer = peer.to_string();
            if let Err(e) = inner
                .catalogue
                .with_store(move |s| Ok(s.db.add_provider(&content_id, &peer)?))
                .await
            {
                tracing::warn!(error = %e, "could not record a provider");
            }
        }
        other => tracing::debug!(?other, "unhandled network event"),
    }
}

/// Refresh the catalogue figures the gauges read.
async fn refresh_figures(inner: &Arc<Context>) {
    use std::sync::atomic::Ordering::Relaxed;
    let figures = inner.metrics.figures.clone();
    let _ = inner
        .catalogue
        .with_store(move |s| {
            figures.packages.store(s.db.package_count()?, Relaxed);
            figures.versions.store(s.db.version_count()?, Relaxed);
            let bytes: u64 = s.db.blob_uses()?.iter().map(|u| u.size).sum();
            figures.blob_bytes.store(bytes, Relaxed);
            Ok(())
        })
        .await;
}

async fn periodic_task(inner: Arc<Context>) {
    let mut flush = tokio::time::interval(PEER_FLUSH);
    let mut ticks: u64 = 0;
    let mut resync = tokio::time::interval(RESYNC);
    resync.tick().await;
    let mut rates = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = inner.supervisor.cancelled() => break,
            _ = rates.tick() => inner.transfers.counters.sample(),
            _ = flush.tick() => {
                inner.peers.enforce_blocks().await;
                flush_peers(&inner).await;
                inner.dht_writer.prune(peerpack_store::db::now());
                ticks += 1;
                // Hourly: the providers other peers announced, once their records would have
                // expired.
                if ticks % 720 == 1 {
                    let before = peerpack_store::db::now()
                        - peerpack_net::dht_store::DEFAULT_PROVIDER_TTL.as_secs() as i64;
                    let me = inner.peer_id.to_string();
                    if let Err(e) = inner
                        .catalogue
                        .with_store(move |s| Ok(s.db.prune_providers(before, &me)?))
                        .await
                    {
                        tracing::warn!(error = %e, "could not forget old providers");
                    }
                }
                // Every 30 s: each refresh is a store operation (and a trace of its own).
                if ticks % 6 == 1 {
                    refresh_figures(&inner).await;
                }
            }
            _ = resync.tick() => {
                if !inner.curators.is_empty() {
                    let inner2 = inner.clone();
                    inner.supervisor.spawn(async move { crate::lookup::fetch_curators(&inner2).await });
                }
                if !inner.catalogue_sync {
                    continue;
                }
                let inner2 = inner.clone();
                inner.supervisor.spawn(async move { crate::sync::anti_entropy(&inner2).await });
            }
        }
    }
}
