//! `peerpack-bench dht`: Kademlia lookups in networks of real nodes in this process, over TCP
//! on 127.0.0.1.
//!
//! For each network size N:
//! 1. N nodes start (catalogue sync off, so that only the DHT carries records), each
//!    bootstrapping to node 0 and to a random earlier node, as `peerpack demo` does;
//! 2. the network settles for a fixed time, so that routing tables fill;
//! 3. K signed package records (the search benchmark's generator) are stored on random nodes,
//!    each put into the DHT, and each node announces itself as a provider of its records'
//!    archives;
//! 4. from random nodes that do not hold them, Q `get_record` and Q `get_providers` queries,
//!    one after the other, are timed from the call to the answer.
//!
//! Peers contacted per query are read from the query's own span (`dht.get`, `dht.providers`:
//! its `contacted` field, libp2p's `QueryStats::num_requests`) by a tracing layer of this
//! benchmark. libp2p does not report hops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

use crate::corpus::{self, Rng, Vocabulary};
use crate::stats::{Summary, summarize};

/// Figures of one network size.
#[derive(Debug, Serialize)]
pub struct SizeReport {
    /// Nodes in the network.
    pub nodes: usize,
    /// Time to start every node, s.
    pub start_s: f64,
    /// Settling time before the puts, s.
    pub settle_s: f64,
    /// Peers connected per node once settled, before the puts: min, median, max.
    pub connections_settled: (usize, usize, usize),
    /// Peers connected per node right after the queries (each query dials the peers it
    /// contacts; trimming lets them go after the grace period): min, median, max.
    pub connections: (usize, usize, usize),
    /// Routing table size per node: min, median, max.
    pub routing_table: (usize, usize, usize),
    /// `put_record` latency.
    pub put: Summary,
    /// Remote peers that stored each put: median.
    pub put_stored_median: usize,
    /// `get_record` latency, every query.
    pub get: Summary,
    /// Share of gets that found the record.
    pub get_found: f64,
    /// Peers contacted per get: (p50, p99).
    pub get_contacted: (u64, u64),
    /// `get_record_hashed` latency (a version record by the hash its index names: the query
    /// ends at the first matching value), every query.
    pub get_hashed: Summary,
    /// Share of hashed gets that found the record.
    pub get_hashed_found: f64,
    /// Peers contacted per hashed get: (p50, p99).
    pub get_hashed_contacted: (u64, u64),
    /// `get_providers` latency, every query.
    pub providers: Summary,
    /// Share of provider lookups that found the provider.
    pub providers_found: f64,
    /// Peers contacted per provider lookup: (p50, p99).
    pub providers_contacted: (u64, u64),
    /// `get_providers_until(.., 1)` latency (the lookup ends at the first provider found, as
    /// an install of a one-piece archive asks), every query.
    pub providers_first: Summary,
    /// Share of those that found the provider.
    pub providers_first_found: f64,
    /// Peers contacted per first-provider lookup: (p50, p99).
    pub providers_first_contacted: (u64, u64),
    /// Resident memory of this process with the network up, MiB.
    pub rss_mib: f64,
    /// Open file descriptors of this process with the network up (sockets, database and
    /// index files of every node).
    pub fds: usize,
}

/// The last `contacted` value of every finished `dht.get` (`dht.get.hashed` when it stopped
/// at a known hash) and `dht.providers` span.
#[derive(Clone, Default)]
struct Contacted(Arc<Mutex<HashMap<&'static str, Vec<u64>>>>);

/// What a span under watch has said so far.
#[derive(Default)]
struct Seen {
    hashed: bool,
    /// A provider lookup that ends at this many providers (0: at the query's end).
    enough: u64,
    contacted: Option<u64>,
}

impl Visit for Seen {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "contacted" => self.contacted = Some(value),
            "enough" => self.enough = value,
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or(0));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "hashed" {
            self.hashed = value;
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S> Layer<S> for Contacted
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: LayerContext<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let mut seen = Seen::default();
        attrs.record(&mut seen);
        span.extensions_mut().insert(seen);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: LayerContext<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(seen) = span.extensions_mut().get_mut::<Seen>() {
            values.record(seen);
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let ext = span.extensions();
        let Some(seen) = ext.get::<Seen>() else {
            return;
        };
        let name = match span.name() {
            "dht.get" if seen.hashed => "dht.get.hashed",
            "dht.get" => "dht.get",
            "dht.providers" if seen.enough > 0 => "dht.providers.first",
            "dht.providers" => "dht.providers",
            _ => return,
        };
        if let Some(n) = seen.contacted {
            peerpack_core::sync::lock(&self.0)
                .entry(name)
                .or_default()
                .push(n);
        }
    }
}

fn percentiles(mut v: Vec<u64>) -> (u64, u64) {
    if v.is_empty() {
        return (0, 0);
    }
    v.sort_unstable();
    let at = |p: f64| v[(((p * v.len() as f64).ceil() as usize).max(1) - 1).min(v.len() - 1)];
    (at(0.5), at(0.99))
}

async fn one_size(
    n: usize,
    keys: usize,
    queries: usize,
    settle: Duration,
    contacted: &Contacted,
    work: &std::path::Path,
) -> Result<SizeReport> {
    let mut rng = Rng::new(n as u64);
    let (nodes, started) =
        crate::net::start(n, work, &mut rng, |c| c.catalogue_sync = false).await?;
    let start_s = started.as_secs_f64();
    let fds = crate::net::fds;
    eprintln!(
        "  {n} nodes started in {start_s:.1} s ({} open files); settling {settle:?}",
        fds()
    );
    tokio::time::sleep(settle).await;
    let connections_settled = crate::net::connections(&nodes).await?;
    eprintln!(
        "  settled: {} open files, {:?} peers connected per node (min, median, max)",
        fds(),
        connections_settled
    );

    // Records, each stored and put by a random node, which also provides its archive.
    let vocab = Vocabulary::new();
    let records = corpus::records(keys, n as u64, &vocab);
    let mut holders = Vec::with_capacity(keys);
    let mut puts = Vec::with_capacity(keys);
    let mut stored = Vec::with_capacity(keys);
    for r in &records {
        let h = rng.below(n);
        let inner = nodes[h].inner();
        peerpack_node::ingest::records(
            inner,
            vec![r.encode()],
            None,
            peerpack_node::ingest::Via::Lookup,
        )
        .await?;
        let net = inner.net_handle();
        let t = Instant::now();
        let peers = net
            .put_record(
                peerpack_net::protocol::record_key(r.name(), r.version()),
                r.encode(),
            )
            .await
            .unwrap_or(0);
        puts.push(t.elapsed());
        stored.push(peers);
        net.start_providing(peerpack_net::protocol::provider_key(&r.content_id))
            .await?;
        holders.push(h);
    }
    stored.sort_unstable();
    peerpack_core::sync::lock(&contacted.0).clear();

    let mut gets = Vec::with_capacity(queries);
    let mut found = 0usize;
    let mut hashed = Vec::with_capacity(queries);
    let mut hashed_found = 0usize;
    let mut provs = Vec::with_capacity(queries);
    let mut provs_found = 0usize;
    let mut first = Vec::with_capacity(queries);
    let mut first_found = 0usize;
    for q in 0..queries {
        let k = q % keys;
        let r = &records[k];
        let mut from = rng.below(n);
        if from == holders[k] {
            from = (from + 1) % n;
        }
        let net = nodes[from].inner().net_handle();
        let t = Instant::now();
        let values = net
            .get_record(
                peerpack_net::protocol::record_key(r.name(), r.version()),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_default();
        gets.push(t.elapsed());
        if values.iter().any(|v| *v == r.encode()) {
            found += 1;
        }
        // From yet another node, so that no connection the get just made helps it.
        let mut from2 = rng.below(n);
        if from2 == holders[k] || from2 == from {
            from2 = (from2 + 2) % n;
        }
        let net2 = nodes[from2].inner().net_handle();
        let t = Instant::now();
        let value = net2
            .get_record_hashed(
                peerpack_net::protocol::record_key(r.name(), r.version()),
                peerpack_core::RecordHash::of(&r.encode()).0,
                Duration::from_secs(30),
            )
            .await
            .ok()
            .flatten();
        hashed.push(t.elapsed());
        if value.is_some() {
            hashed_found += 1;
        }
        let t = Instant::now();
        let p = net
            .get_providers(
                peerpack_net::protocol::provider_key(&r.content_id),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_default();
        provs.push(t.elapsed());
        if p.contains(&nodes[holders[k]].peer_id()) {
            provs_found += 1;
        }
        let t = Instant::now();
        let p = net2
            .get_providers_until(
                peerpack_net::protocol::provider_key(&r.content_id),
                Duration::from_secs(30),
                1,
            )
            .await
            .unwrap_or_default();
        first.push(t.elapsed());
        // Versions of one name share their archive here (the corpus derives the content id
        // from the name), so the first provider found may be another version's holder.
        let providers_of: Vec<_> = records
            .iter()
            .zip(&holders)
            .filter(|(o, _)| o.content_id == r.content_id)
            .map(|(_, h)| nodes[*h].peer_id())
            .collect();
        if p.iter().any(|x| providers_of.contains(x)) {
            first_found += 1;
        }
    }
    let (get_contacted, get_hashed_contacted, providers_contacted, first_contacted) = {
        let c = peerpack_core::sync::lock(&contacted.0);
        (
            percentiles(c.get("dht.get").cloned().unwrap_or_default()),
            percentiles(c.get("dht.get.hashed").cloned().unwrap_or_default()),
            percentiles(c.get("dht.providers").cloned().unwrap_or_default()),
            percentiles(c.get("dht.providers.first").cloned().unwrap_or_default()),
        )
    };
    let mut conns = Vec::with_capacity(n);
    let mut table = Vec::with_capacity(n);
    for node in &nodes {
        let s = node.inner().status().await?;
        conns.push(s.connected_peers);
        table.push(s.routing_table_size);
    }
    let report = SizeReport {
        nodes: n,
        start_s,
        settle_s: settle.as_secs_f64(),
        connections_settled,
        connections: crate::net::spread(conns),
        routing_table: crate::net::spread(table),
        put: summarize(&puts),
        put_stored_median: stored.get(stored.len() / 2).copied().unwrap_or(0),
        get: summarize(&gets),
        get_found: found as f64 / queries.max(1) as f64,
        get_contacted,
        get_hashed: summarize(&hashed),
        get_hashed_found: hashed_found as f64 / queries.max(1) as f64,
        get_hashed_contacted,
        providers: summarize(&provs),
        providers_found: provs_found as f64 / queries.max(1) as f64,
        providers_contacted,
        providers_first: summarize(&first),
        providers_first_found: first_found as f64 / queries.max(1) as f64,
        providers_first_contacted: first_contacted,
        rss_mib: crate::net::rss_mib(),
        fds: crate::net::fds(),
    };
    for node in nodes {
        node.shutdown().await;
    }
    Ok(report)
}

/// Run the benchmark for each network size.
pub async fn run(
    sizes: &[usize],
    keys: usize,
    queries: usize,
    settle: Duration,
    json: Option<&std::path::Path>,
) -> Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    if sizes.iter().any(|&n| n < 2) {
        bail!("a network needs at least 2 nodes");
    }
    let contacted = Contacted::default();
    // Only the DHT query spans are of interest; everything else is filtered out before any
    // work is done for it.
    tracing_subscriber::registry()
        .with(
            contacted
                .clone()
                .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                    m.is_span() && (m.name() == "dht.get" || m.name() == "dht.providers")
                })),
        )
        .init();
    let tmp = tempfile::tempdir()?;
    let mut reports = Vec::new();
    for &n in sizes {
        eprintln!("network of {n} nodes...");
        let r = one_size(n, keys, queries, settle, &contacted, tmp.path()).await?;
        eprintln!(
            "  get p50 {:.2} ms p99 {:.2} ms ({:.0}% found, {} / {} peers contacted p50 / p99); by hash p50 {:.2} ms p99 {:.2} ms ({:.0}% found, {} / {} contacted); providers p50 {:.2} ms p99 {:.2} ms; first provider p50 {:.2} ms p99 {:.2} ms ({:.0}% found, {} / {} contacted); {} connections per node (median)",
            r.get.p50_ms,
            r.get.p99_ms,
            r.get_found * 100.0,
            r.get_contacted.0,
            r.get_contacted.1,
            r.get_hashed.p50_ms,
            r.get_hashed.p99_ms,
            r.get_hashed_found * 100.0,
            r.get_hashed_contacted.0,
            r.get_hashed_contacted.1,
            r.providers.p50_ms,
            r.providers.p99_ms,
            r.providers_first.p50_ms,
            r.providers_first.p99_ms,
            r.providers_first_found * 100.0,
            r.providers_first_contacted.0,
            r.providers_first_contacted.1,
            r.connections.1
        );
        reports.push(r);
    }
    println!(
        "\n{:>5} {:>22} {:>22} {:>22} {:>7} {:>22} {:>7} {:>16} {:>9}",
        "nodes",
        "get min/p50/p99 ms",
        "by hash min/p50/p99",
        "providers min/p50/p99",
        "found",
        "put p50/p99 ms",
        "stored",
        "conns min/med/max",
        "RSS MiB"
    );
    for r in &reports {
        println!(
            "{:>5} {:>22} {:>22} {:>22} {:>6.0}% {:>22} {:>7} {:>16} {:>9.0}",
            r.nodes,
            format!(
                "{:.2}/{:.2}/{:.2}",
                r.get.min_ms, r.get.p50_ms, r.get.p99_ms
            ),
            format!(
                "{:.2}/{:.2}/{:.2}",
                r.get_hashed.min_ms, r.get_hashed.p50_ms, r.get_hashed.p99_ms
            ),
            format!(
                "{:.2}/{:.2}/{:.2}",
                r.providers.min_ms, r.providers.p50_ms, r.providers.p99_ms
            ),
            r.get_found * 100.0,
            format!("{:.2}/{:.2}", r.put.p50_ms, r.put.p99_ms),
            r.put_stored_median,
            format!(
                "{}/{}/{}",
                r.connections.0, r.connections.1, r.connections.2
            ),
            r.rss_mib
        );
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(&reports)?)?;
    }
    Ok(())
}
