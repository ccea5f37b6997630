//! `peerpack-bench propagation`: from a `publish` call on one node until the package is
//! searchable on every node, in networks of real nodes in this process over TCP on 127.0.0.1.
//!
//! For each network size N:
//! 1. N nodes start as `peerpack demo` starts them (catalogue sync on), each bootstrapping to
//!    node 0 and to a random earlier node, and settle for a fixed time;
//! 2. P times, a random node publishes a small package with a tag no other package has: the
//!    even publishes a new name, the odd ones a new version of the name before (no DHT read
//!    before signing).
//!    The clock starts at the call. The call's own latency is one figure; then every other
//!    node is searched for the tag (a filter alone: the cheapest search), over and over: each
//!    sweep asks the nodes that have not answered yet, all at once, each on its own task as
//!    its own user would, then sleeps 10 ms. The time at which each first answers with the
//!    package is recorded;
//! 3. peers connected per node are read before the publishes and after them.
//!
//! A node's time is an upper bound: the sweep that sees the package starts at most one sweep
//! after it became searchable, and the probes share the two cores with the nodes. A search of
//! a node that has not received the package costs a fraction of a millisecond; one that has
//! commits the node's search index first, which the node's own indexer does within 20 ms
//! anyway. Asked one after the other, 99 nodes took up to 1.5 s a sweep, which the figures
//! then measured instead of the nodes.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use peerpack_node::Context;
use peerpack_node::queries::Search;
use serde::Serialize;

use crate::corpus::Rng;
use crate::stats::{Summary, summarize};

/// How long one package may take to reach every node before it counts as not reached.
const PATIENCE: Duration = Duration::from_secs(30);
/// The pause between sweeps.
const SWEEP_PAUSE: Duration = Duration::from_millis(10);

/// Figures of one network size.
#[derive(Debug, Serialize)]
pub struct SizeReport {
    /// Nodes in the network.
    pub nodes: usize,
    /// Time to start every node, s.
    pub start_s: f64,
    /// Settling time before the publishes, s.
    pub settle_s: f64,
    /// Packages published.
    pub publishes: usize,
    /// Latency of the `publish` call, every publish.
    pub publish: Summary,
    /// Latency of the `publish` call of a new name: the node first reads the name's index
    /// from the DHT (a full Kademlia query) to learn whether another key owns it.
    pub publish_new_name: Summary,
    /// Latency of the `publish` call of a new version of a name the node already publishes:
    /// no DHT read.
    pub publish_new_version: Summary,
    /// Time from the call until the package is searchable on every other node, per publish
    /// that reached them all.
    pub all_nodes: Summary,
    /// Time from the call until the package is searchable on a node, every (publish, node).
    pub per_node: Summary,
    /// Share of (publish, node) pairs reached within the patience of 30 s.
    pub reached: f64,
    /// Peers connected per node once settled, before the publishes: min, median, max.
    pub connections_settled: (usize, usize, usize),
    /// Peers connected per node after the publishes: min, median, max.
    pub connections: (usize, usize, usize),
    /// Resident memory of this process with the network up, MiB.
    pub rss_mib: f64,
    /// Every (publish, node) time, ms, for plots.
    pub samples_ms: Vec<f64>,
}

/// Write a small package `name` `version` tagged `marker`.
fn package(dir: &Path, name: &str, version: &str, marker: &str) -> Result<()> {
    tagged_package(dir, name, version, marker, 2048)
}

/// Write a package `name` `version` tagged `marker`, with `bytes` of incompressible data.
pub(crate) fn tagged_package(
    dir: &Path,
    name: &str,
    version: &str,
    marker: &str,
    bytes: u64,
) -> Result<()> {
    crate::download::package(dir, name, bytes)?;
    std::fs::write(
        dir.join("peerpack.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"{version}\"\ndescription = \"propagation benchmark package\"\nlicense = \"MIT\"\nauthors = [\"bench\"]\ntags = [\"{marker}\"]\n"
        ),
    )?;
    Ok(())
}

async fn searchable(node: &std::sync::Arc<Context>, marker: &str, name: &str) -> bool {
    node.search(Search {
        tags: Some(marker.to_owned()),
        limit: Some(5),
        ..Default::default()
    })
    .await
    .is_ok_and(|hits| hits.iter().any(|h| h.name == name))
}

async fn one_size(n: usize, publishes: usize, settle: Duration, work: &Path) -> Result<SizeReport> {
    let mut rng = Rng::new(0x5eed ^ n as u64);
    let (nodes, started) = crate::net::start(n, work, &mut rng, |_| {}).await?;
    eprintln!(
        "  {n} nodes started in {:.1} s; settling {settle:?}",
        started.as_secs_f64()
    );
    tokio::time::sleep(settle).await;
    let connections_settled = crate::net::connections(&nodes).await?;
    eprintln!("  settled: {connections_settled:?} peers connected per node (min, median, max)");

    let mut calls = Vec::with_capacity(publishes);
    let mut new_names = Vec::new();
    let mut new_versions = Vec::new();
    let mut from = 0;
    let mut all = Vec::with_capacity(publishes);
    let mut per_node = Vec::with_capacity(publishes * n);
    let mut reached = 0usize;
    for p in 0..publishes {
        let new_name = p % 2 == 0;
        if new_name {
            from = rng.below(n);
        }
        let name = format!("propagation-{n}-{}", p / 2);
        let marker = format!("pmark{n}x{p}");
        let dir = work.join(format!("p{p}"));
        let version = if new_name { "1.0.0" } else { "1.1.0" };
        package(&dir, &name, version, &marker)?;
        let options = peerpack_node::publish::PublishOptions {
            allow_unresolved: true,
            ..Default::default()
        };
        let t = Instant::now();
        peerpack_node::publish::publish_with(nodes[from].inner(), dir, options).await?;
        calls.push(t.elapsed());
        if new_name {
            new_names.push(t.elapsed());
        } else {
            new_versions.push(t.elapsed());
        }
        let mut waiting: Vec<usize> = (0..n).filter(|&i| i != from).collect();
        let mut last = Duration::ZERO;
        while !waiting.is_empty() && t.elapsed() < PATIENCE {
            let mut sweep = tokio::task::JoinSet::new();
            for i in waiting {
                let (node, marker, name) = (nodes[i].inner().clone(), marker.clone(), name.clone());
                sweep.spawn(async move {
                    let found = searchable(&node, &marker, &name).await;
                    (i, found.then(|| t.elapsed()))
                });
            }
            let mut still = Vec::with_capacity(n);
            while let Some(answer) = sweep.join_next().await {
                match answer? {
                    (_, Some(d)) => {
                        per_node.push(d);
                        last = last.max(d);
                        reached += 1;
                    }
                    (i, None) => still.push(i),
                }
            }
            waiting = still;
            if !waiting.is_empty() {
                tokio::time::sleep(SWEEP_PAUSE).await;
            }
        }
        if waiting.is_empty() {
            all.push(last);
        } else {
            eprintln!(
                "  {name}: {} of {} nodes did not find it within {PATIENCE:?}",
                waiting.len(),
                n - 1
            );
        }
        eprintln!(
            "  publish {p}: call {:.1} ms, every node {:.1} ms",
            calls[p].as_secs_f64() * 1e3,
            last.as_secs_f64() * 1e3
        );
    }
    let connections = crate::net::connections(&nodes).await?;
    let report = SizeReport {
        nodes: n,
        start_s: started.as_secs_f64(),
        settle_s: settle.as_secs_f64(),
        publishes,
        publish: summarize(&calls),
        publish_new_name: summarize(&new_names),
        publish_new_version: summarize(&new_versions),
        all_nodes: summarize(&all),
        per_node: summarize(&per_node),
        reached: reached as f64 / (publishes * (n - 1)).max(1) as f64,
        connections_settled,
        connections,
        rss_mib: crate::net::rss_mib(),
        samples_ms: per_node.iter().map(|d| d.as_secs_f64() * 1e3).collect(),
    };
    for node in nodes {
        node.shutdown().await;
    }
    Ok(report)
}

/// Run the benchmark for each network size; answers the reports.
pub async fn run(
    sizes: &[usize],
    publishes: usize,
    settle: Duration,
    json: Option<&Path>,
) -> Result<Vec<SizeReport>> {
    if sizes.iter().any(|&n| n < 2) {
        bail!("a network needs at least 2 nodes");
    }
    crate::net::log_from_env();
    let tmp = tempfile::tempdir()?;
    let mut reports = Vec::new();
    for &n in sizes {
        eprintln!("network of {n} nodes...");
        reports.push(one_size(n, publishes, settle, tmp.path()).await?);
    }
    println!(
        "\n{:>5} {:>22} {:>22} {:>24} {:>24} {:>8} {:>18} {:>18} {:>8}",
        "nodes",
        "publish name p50/p99",
        "publish version p50/p99",
        "every node min/p50/p99",
        "one node min/p50/p99",
        "reached",
        "conns before",
        "conns after",
        "RSS MiB"
    );
    for r in &reports {
        let s = |s: &Summary| format!("{:.1}/{:.1}/{:.1}", s.min_ms, s.p50_ms, s.p99_ms);
        let c = |c: (usize, usize, usize)| format!("{}/{}/{}", c.0, c.1, c.2);
        println!(
            "{:>5} {:>22} {:>22} {:>24} {:>24} {:>7.1}% {:>18} {:>18} {:>8.0}",
            r.nodes,
            format!(
                "{:.1}/{:.1}",
                r.publish_new_name.p50_ms, r.publish_new_name.p99_ms
            ),
            format!(
                "{:.1}/{:.1}",
                r.publish_new_version.p50_ms, r.publish_new_version.p99_ms
            ),
            s(&r.all_nodes),
            s(&r.per_node),
            r.reached * 100.0,
            c(r.connections_settled),
            c(r.connections),
            r.rss_mib
        );
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(&reports)?)?;
    }
    Ok(reports)
}
