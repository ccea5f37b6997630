//! `peerpack-bench dht --processes N`: Kademlia lookups in a network of real `peerpack node`
//! processes on 127.0.0.1, asked through each node's HTTP API as an operator asks them
//! (`peerpack dht name`, `peerpack dht providers`).
//!
//! 1. N node processes start (`procnet`, catalogue sync off), each bootstrapping to node 0 and
//!    to a random earlier node, and settle for a fixed time;
//! 2. K small packs are published, each from a random node, with `peerpack publish
//!    --wait-dht`: the call returns once the index and version records are put and the archive
//!    is announced as provided;
//! 3. Q times, for a random pack, from random nodes other than its publisher:
//!    - `GET /v1/dht/names/{name}`: a whole query for the name's index records (what a lookup
//!      of an unknown name runs first);
//!    - `GET /v1/dht/providers/{content_id}`: a whole provider lookup, from another node;
//!    - the same with `?first=true`, from a third node: the lookup an install of a small
//!      archive runs.
//!
//! The figure of each query is the node's own clock around the Kademlia query (`took_ms` in
//! the answer); the HTTP round trip around it is reported too. Every node heard each
//! publish by gossip, so it holds the index record in its own store, as in a live network;
//! a whole query still asks the closest peers. Peers contacted per query are not reported
//! here: they live in each process's spans (the in-process sizes report them).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::corpus::Rng;
use crate::procnet::ProcNet;
use crate::stats::{Summary, summarize};

/// Figures of a run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Node processes.
    pub nodes: usize,
    /// Settling time before the publishes, s.
    pub settle_s: f64,
    /// Packs published.
    pub packs: usize,
    /// `peerpack publish --wait-dht` of each pack, whole process.
    pub publish: Summary,
    /// Index record reads (a whole query), the node's clock.
    pub get: Summary,
    /// Share of those that found the publisher's claim, and only it.
    pub get_found: f64,
    /// Whole provider lookups, the node's clock.
    pub providers: Summary,
    /// Share of those that found the publisher.
    pub providers_found: f64,
    /// Lookups ended at the first provider, the node's clock.
    pub providers_first: Summary,
    /// Share of those that found the publisher.
    pub providers_first_found: f64,
    /// The HTTP round trips around every query above.
    pub http: Summary,
    /// Peers connected per node after the queries: min, median, max.
    pub connections: (usize, usize, usize),
    /// Routing table size per node after the queries: min, median, max.
    pub routing_table: (usize, usize, usize),
}

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v / 1e3)
}

/// Run the benchmark with `nodes` processes of `bin` (or the release binary beside this one).
pub async fn run(
    nodes: usize,
    packs: usize,
    queries: usize,
    settle: Duration,
    bin: Option<PathBuf>,
    json: Option<&std::path::Path>,
) -> Result<Report> {
    if nodes < 4 {
        bail!("the process DHT benchmark needs at least 4 nodes");
    }
    if packs == 0 {
        bail!("publish at least one pack (--keys)");
    }
    let bin = crate::restart::peerpack_bin(bin)?;
    let tmp = tempfile::tempdir()?;
    let work = tmp.path().to_owned();
    let mut rng = Rng::new(0xd47 ^ nodes as u64);
    eprintln!("starting {nodes} node processes...");
    let started = Instant::now();
    let net = tokio::task::block_in_place(|| {
        ProcNet::start(&bin, &work, nodes, &mut rng, |_| {
            vec!["--no-catalogue-sync".into()]
        })
    })?;
    eprintln!(
        "  started in {:.1} s; settling {settle:?}",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(settle).await;

    let mut clients = Vec::with_capacity(nodes);
    let mut ids = Vec::with_capacity(nodes);
    for node in &net.nodes {
        let dir = peerpack_api::DataDir::new(node.dir.clone());
        let info = peerpack_api::RuntimeInfo::read(&dir).context("a node wrote no node.json")?;
        clients.push(peerpack_api::Client::new(&info.api, None)?);
        ids.push(info.peer_id);
    }

    // The packs, each published by a random node.
    let mut published = Vec::with_capacity(packs);
    let mut publish = Vec::with_capacity(packs);
    for k in 0..packs {
        let from = rng.below(nodes);
        let name = format!("dht-pack-{k}");
        let dir = work.join(format!("src-{k}"));
        crate::propagation::tagged_package(&dir, &name, "1.0.0", "dhtbench", 1024)?;
        let mut cmd = net.cli(from, &work);
        cmd.arg("publish").arg(&dir).args(["--wait-dht", "--json"]);
        let (out, took) = tokio::task::block_in_place(|| {
            crate::procnet::run_timed(cmd, &format!("publish {name}"))
        })?;
        publish.push(took);
        let answer: serde_json::Value = serde_json::from_str(&out)?;
        let cid = answer["content_id"]
            .as_str()
            .context("publish answered no content id")?
            .to_owned();
        published.push((from, name, cid));
    }

    let (mut gets, mut http, mut get_found) = (vec![], vec![], 0usize);
    // Provider lookups, whole and up to the first: their latencies and how many found.
    let mut lookups = [(false, vec![], 0usize), (true, vec![], 0usize)];
    let other = |rng: &mut Rng, not: &[usize]| loop {
        let i = rng.below(nodes);
        if !not.contains(&i) {
            break i;
        }
    };
    for q in 0..queries {
        let (from, name, cid) = &published[q % packs];
        let a = other(&mut rng, &[*from]);
        let t = Instant::now();
        let n = clients[a].dht_name(name).await?;
        http.push(t.elapsed());
        gets.push(ms(n.took_ms));
        let owner = &ids[*from];
        if n.claims.len() == 1 && n.claims[0].versions == ["1.0.0"] {
            get_found += 1;
        }
        // Each lookup from a node that has not asked yet, so that no connection an earlier
        // query made helps it.
        let mut asked = vec![*from, a];
        for (first, samples, found) in &mut lookups {
            let at = other(&mut rng, &asked);
            asked.push(at);
            let query = peerpack_api::DhtProvidersQuery { first: *first };
            let t = Instant::now();
            let p = clients[at].dht_providers(cid, &query).await?;
            http.push(t.elapsed());
            samples.push(ms(p.took_ms));
            *found += usize::from(p.providers.contains(owner));
        }
    }
    let [(_, provs, provs_found), (_, first, first_found)] = lookups;

    let mut conns = Vec::with_capacity(nodes);
    let mut table = Vec::with_capacity(nodes);
    for c in &clients {
        let s = c.status().await?;
        conns.push(s.connected_peers);
        table.push(s.routing_table_size);
    }
    tokio::task::block_in_place(|| drop(net));
    let share = |n: usize| n as f64 / queries.max(1) as f64;
    let report = Report {
        nodes,
        settle_s: settle.as_secs_f64(),
        packs,
        publish: summarize(&publish),
        get: summarize(&gets),
        get_found: share(get_found),
        providers: summarize(&provs),
        providers_found: share(provs_found),
        providers_first: summarize(&first),
        providers_first_found: share(first_found),
        http: summarize(&http),
        connections: crate::net::spread(conns),
        routing_table: crate::net::spread(table),
    };
    println!(
        "\n{nodes} node processes, {packs} packs, {queries} queries of each kind (node's clock)"
    );
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>7}",
        "query", "min ms", "p50 ms", "p99 ms", "found"
    );
    for (what, s, found) in [
        ("name index, whole query", &report.get, report.get_found),
        (
            "providers, whole query",
            &report.providers,
            report.providers_found,
        ),
        (
            "providers, up to the first",
            &report.providers_first,
            report.providers_first_found,
        ),
    ] {
        println!(
            "{:<36} {:>9.2} {:>9.2} {:>9.2} {:>6.0}%",
            what,
            s.min_ms,
            s.p50_ms,
            s.p99_ms,
            found * 100.0
        );
    }
    println!(
        "{:<36} {:>9.2} {:>9.2} {:>9.2}",
        "HTTP round trip around each", report.http.min_ms, report.http.p50_ms, report.http.p99_ms
    );
    println!(
        "{:<36} {:>9.2} {:>9.2} {:>9.2}",
        "publish --wait-dht (whole process)",
        report.publish.min_ms,
        report.publish.p50_ms,
        report.publish.p99_ms
    );
    println!(
        "connections per node {:?}, routing table {:?} (min, median, max)",
        report.connections, report.routing_table
    );
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(report)
}
