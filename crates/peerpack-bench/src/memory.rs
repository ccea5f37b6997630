//! `peerpack-bench memory`: what a node holds in memory.
//!
//! 1. **An idle node process with peers**, for each catalogue size N: a data directory is
//!    filled with N signed package records through the store the node uses, the real
//!    `peerpack node` binary starts on it, and P nodes in this process dial it (their own
//!    catalogue sync off, so that they do not pull its whole catalogue; it pulls theirs, which
//!    are empty). Once it sees them connected it settles, and its resident memory is read from
//!    `/proc`: the total, the anonymous pages (heap, stacks), the pages of mapped files (the
//!    binary's code, the search index, SQLite), the peak and the threads.
//! 2. **A network in this process**: M nodes start (as `peerpack demo` starts them) and
//!    settle; memory per node is this process's resident memory with them up, less what it
//!    held before, divided by M.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::corpus::Rng;
use crate::restart::{Memory, fill, peerpack_bin, spawn_serving};

/// The idle node process with one catalogue size.
#[derive(Debug, Serialize)]
pub struct IdleReport {
    /// Packages in its catalogue.
    pub packages: usize,
    /// Peers that dialled it.
    pub peers: usize,
    /// Peers it showed connected when measured.
    pub connected: usize,
    /// Its memory once settled.
    pub memory: Memory,
}

/// Memory per node of a network in this process.
#[derive(Debug, Serialize)]
pub struct NetworkReport {
    /// Nodes.
    pub nodes: usize,
    /// This process's resident memory before they started, MiB.
    pub rss_before_mib: f64,
    /// With them up and settled, MiB.
    pub rss_mib: f64,
    /// (rss_mib - rss_before_mib) / nodes.
    pub per_node_mib: f64,
}

/// The whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// One per catalogue size.
    pub idle: Vec<IdleReport>,
    /// The in-process network, if asked for.
    pub network: Option<NetworkReport>,
}

/// What `peerpack status --json` says of the node on `dir`.
fn status(bin: &Path, dir: &Path) -> Result<serde_json::Value> {
    let out = std::process::Command::new(bin)
        .arg("--data-dir")
        .arg(dir)
        .args(["--json", "status"])
        .output()?;
    anyhow::ensure!(out.status.success(), "peerpack status failed");
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The node's peer id and first listen address, as its status shows them.
fn address_of(bin: &Path, dir: &Path) -> Result<peerpack_net::p2p::Multiaddr> {
    let v = status(bin, dir)?;
    let peer = v["peer_id"].as_str().context("no peer_id in status")?;
    let listen = v["listen_addrs"][0]
        .as_str()
        .context("no listen address in status")?;
    let addr: peerpack_net::p2p::Multiaddr = listen.parse()?;
    Ok(if peerpack_net::peer_id_of(&addr).is_some() {
        addr
    } else {
        format!("{listen}/p2p/{peer}").parse()?
    })
}

fn connected_peers(bin: &Path, dir: &Path) -> usize {
    status(bin, dir)
        .ok()
        .and_then(|v| v["connected_peers"].as_u64())
        .map_or(0, |n| n as usize)
}

fn idle(bin: &Path, packages: usize, peers: usize, settle: Duration) -> Result<IdleReport> {
    let dir = tempfile::tempdir()?;
    let (fill_s, _) = fill(dir.path(), packages, 7)?;
    eprintln!("  {packages} packages filled in {fill_s:.1} s");
    let node = spawn_serving(bin, dir.path())?;
    let addr = address_of(bin, dir.path())?;
    let work = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let mut nodes = Vec::with_capacity(peers);
        for i in 0..peers {
            let mut config = peerpack_node::Config::loopback(work.path().join(format!("p{i}")));
            config.catalogue_sync = false;
            config.bootstrap.push(addr.clone());
            nodes.push(peerpack_node::Node::start(config).await?);
        }
        let t = Instant::now();
        let mut connected = connected_peers(bin, dir.path());
        while connected < peers && t.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            connected = connected_peers(bin, dir.path());
        }
        tokio::time::sleep(settle).await;
        let connected = connected_peers(bin, dir.path());
        let memory = node.memory()?;
        for n in nodes {
            n.shutdown().await;
        }
        anyhow::Ok(IdleReport {
            packages,
            peers,
            connected,
            memory,
        })
    })?;
    drop(node);
    Ok(report)
}

async fn network(n: usize, settle: Duration) -> Result<NetworkReport> {
    let work = tempfile::tempdir()?;
    let rss_before_mib = crate::net::rss_mib();
    let (nodes, _) = crate::net::start(n, work.path(), &mut Rng::new(3), |_| {}).await?;
    tokio::time::sleep(settle).await;
    let rss_mib = crate::net::rss_mib();
    for node in nodes {
        node.shutdown().await;
    }
    Ok(NetworkReport {
        nodes: n,
        rss_before_mib,
        rss_mib,
        per_node_mib: (rss_mib - rss_before_mib) / n.max(1) as f64,
    })
}

/// Run the benchmark.
pub fn run(
    sizes: &[usize],
    peers: usize,
    nodes: usize,
    settle: Duration,
    bin: Option<PathBuf>,
    json: Option<&Path>,
) -> Result<Report> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful figures");
    }
    if sizes.is_empty() && nodes == 0 {
        bail!("nothing to measure: give --packages or --nodes");
    }
    let bin = peerpack_bin(bin)?;
    let mut report = Report {
        idle: Vec::new(),
        network: None,
    };
    for &n in sizes {
        eprintln!("idle node with {n} packages and {peers} peers...");
        report.idle.push(idle(&bin, n, peers, settle)?);
    }
    if nodes > 0 {
        eprintln!("{nodes} nodes in this process...");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        report.network = Some(runtime.block_on(network(nodes, settle))?);
    }
    println!(
        "\n{:>9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "packages", "peers", "RSS MiB", "anon", "files", "peak", "threads", "conns"
    );
    for r in &report.idle {
        let m = &r.memory;
        println!(
            "{:>9} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.0} {:>8}",
            r.packages,
            r.peers,
            m.rss_mib,
            m.anon_mib,
            m.file_mib,
            m.peak_mib,
            m.threads,
            r.connected
        );
    }
    if let Some(n) = &report.network {
        println!(
            "\n{} nodes in one process: {:.0} MiB with them up ({:.0} before), {:.1} MiB per node",
            n.nodes, n.rss_mib, n.rss_before_mib, n.per_node_mib
        );
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(report)
}
