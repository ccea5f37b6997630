//! `peerpack-bench churn`: installs while a third of the network crashes and comes back.
//!
//! 1. N `peerpack node` processes start on 127.0.0.1 (`procnet`), and settle.
//! 2. P small packs are published, each from a random node, and installed by R other random
//!    nodes, which then provide it too: every pack has R + 1 providers.
//! 3. A third of the nodes, chosen at random, are the victims. One after the other, each is
//!    killed with SIGKILL, stays down for a while, and is started again on its data directory
//!    (same port, same identity). Publishers and providers are among them.
//! 4. Meanwhile the other nodes install packs they do not hold yet through the CLI
//!    (`peerpack install NAME` in a fresh directory), one after the other, until every victim
//!    has been killed and restarted. An install succeeds when the command exits 0 and the
//!    pack's tree is in place.
//!
//! Reported: the share of installs that succeeded, their latency (min/p50/p99), every
//! failure's message, and how long each restarted node took to serve again.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::corpus::Rng;
use crate::procnet::ProcNet;
use crate::stats::{Summary, summarize};

/// Parameters of a run.
#[derive(Debug, Clone)]
pub struct Params {
    /// Nodes in the network.
    pub nodes: usize,
    /// Packs published.
    pub packs: usize,
    /// Bytes of data in each pack.
    pub pack_bytes: u64,
    /// Nodes that install each pack before the churn starts (and so provide it).
    pub replicas: usize,
    /// How long each victim stays down.
    pub down: Duration,
    /// Settling time after the start.
    pub settle: Duration,
    /// Installs to run at least, churn or not.
    pub min_installs: usize,
}

/// Figures of a run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Nodes in the network.
    pub nodes: usize,
    /// Nodes killed and restarted during the installs.
    pub victims: usize,
    /// Packs published.
    pub packs: usize,
    /// Bytes of data in each pack.
    pub pack_bytes: u64,
    /// Providers of each pack when the churn starts (the publisher and its replicas).
    pub providers_per_pack: usize,
    /// How long each victim stayed down, s.
    pub down_s: f64,
    /// Installs run during the churn.
    pub installs: usize,
    /// Installs that succeeded.
    pub succeeded: usize,
    /// `succeeded / installs`.
    pub success: f64,
    /// Latency of the successful installs, end to end through the CLI.
    pub latency: Summary,
    /// Latency of the successful installs that ran while a victim was down.
    pub latency_while_down: Summary,
    /// Installs of a pack one of whose providers was down at the time.
    pub installs_provider_down: usize,
    /// Of those, the ones that succeeded.
    pub succeeded_provider_down: usize,
    /// The message of every failed install (its last line of stderr).
    pub failures: Vec<String>,
    /// Kills made.
    pub kills: usize,
    /// Time from starting a killed node again until it served (wrote node.json).
    pub restart_ready: Summary,
    /// Length of the run of installs, s.
    pub run_s: f64,
    /// Every successful install's latency, ms, for plots.
    pub samples_ms: Vec<f64>,
}

/// Run `cmd`; answers its stdout, or the error naming its stderr.
fn run_ok(mut cmd: std::process::Command, what: &str) -> Result<String> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run the benchmark.
pub fn run(params: &Params, bin: Option<PathBuf>, json: Option<&Path>) -> Result<Report> {
    let p = params.clone();
    if p.nodes < 6 {
        bail!("churn needs at least 6 nodes");
    }
    if p.replicas + 1 >= p.nodes {
        bail!("--replicas must be below --nodes - 1");
    }
    let bin = crate::restart::peerpack_bin(bin)?;
    let tmp = tempfile::tempdir()?;
    let work_dir = tmp.path().to_owned();
    let work = work_dir.as_path();
    // To read the nodes' logs (WORK/log-I.txt) after a run.
    if std::env::var_os("PEERPACK_BENCH_KEEP").is_some() {
        eprintln!("the nodes' data and logs stay in {}", work.display());
        std::mem::forget(tmp);
    }
    let mut rng = Rng::new(0xc4u64 ^ p.nodes as u64);
    eprintln!("starting {} node processes...", p.nodes);
    let t = Instant::now();
    let net = ProcNet::start(&bin, work, p.nodes, &mut rng, |_| Vec::new())?;
    eprintln!(
        "  started in {:.1} s; settling {:?}",
        t.elapsed().as_secs_f64(),
        p.settle
    );
    std::thread::sleep(p.settle);

    // Publish, then replicate every pack.
    let mut holders: Vec<HashSet<usize>> = Vec::with_capacity(p.packs);
    let names: Vec<String> = (0..p.packs).map(|k| format!("churn-pack-{k}")).collect();
    for (k, name) in names.iter().enumerate() {
        let from = rng.below(p.nodes);
        let dir = work.join(format!("src-{k}"));
        crate::propagation::tagged_package(&dir, name, "1.0.0", "churn", p.pack_bytes)?;
        let mut cmd = net.cli(from, work);
        cmd.arg("publish").arg(&dir);
        run_ok(cmd, &format!("publish {name} on node {from}"))?;
        holders.push(HashSet::from([from]));
    }
    eprintln!("  {} packs published; replicating", p.packs);
    for (k, name) in names.iter().enumerate() {
        while holders[k].len() < p.replicas + 1 {
            let at = rng.below(p.nodes);
            if holders[k].contains(&at) {
                continue;
            }
            let cwd = work.join(format!("setup-{k}-{at}"));
            std::fs::create_dir_all(&cwd)?;
            let deadline = Instant::now() + Duration::from_secs(60);
            // The pack may not have reached this node yet.
            loop {
                let mut cmd = net.cli(at, &cwd);
                cmd.args(["install", name]);
                match run_ok(cmd, &format!("install {name} on node {at}")) {
                    Ok(_) => break,
                    Err(e) if Instant::now() > deadline => return Err(e),
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
            holders[k].insert(at);
        }
    }

    // Victims and the installs the others will run.
    let mut order: Vec<usize> = (0..p.nodes).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let victims: Vec<usize> = order[..p.nodes / 3].to_vec();
    let stable: Vec<usize> = order[p.nodes / 3..].to_vec();
    let mut pairs: Vec<(usize, usize)> = stable
        .iter()
        .flat_map(|&i| (0..p.packs).map(move |k| (i, k)))
        .filter(|&(i, k)| !holders[k].contains(&i))
        .collect();
    for i in (1..pairs.len()).rev() {
        pairs.swap(i, rng.below(i + 1));
    }
    eprintln!(
        "  churn: {} victims, each down {:?}; {} stable nodes install",
        victims.len(),
        p.down,
        stable.len()
    );

    // The same command line as `net.cli`, built without the network's lock.
    let dirs: Vec<PathBuf> = net.nodes.iter().map(|n| n.dir.clone()).collect();
    let net = Arc::new(Mutex::new(net));
    let done = Arc::new(AtomicBool::new(false));
    // The victim down now, or usize::MAX.
    let down_now = Arc::new(AtomicUsize::new(usize::MAX));
    let killer = {
        let net = net.clone();
        let done = done.clone();
        let down_now = down_now.clone();
        let victims = victims.clone();
        let pause = p.down;
        std::thread::spawn(move || -> Result<Vec<Duration>> {
            let mut ready = Vec::new();
            // Let a few installs run with everyone up first.
            std::thread::sleep(Duration::from_secs(1));
            for &v in &victims {
                peerpack_core::sync::lock(&net).kill(v)?;
                down_now.store(v, Ordering::SeqCst);
                std::thread::sleep(pause);
                ready.push(peerpack_core::sync::lock(&net).up(v)?);
                down_now.store(usize::MAX, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(500));
            }
            done.store(true, Ordering::SeqCst);
            Ok(ready)
        })
    };

    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut while_down = Vec::new();
    let mut failures = Vec::new();
    let mut installs = 0usize;
    let (mut provider_down, mut provider_down_ok) = (0usize, 0usize);
    for (n, &(i, k)) in pairs.iter().enumerate() {
        if done.load(Ordering::SeqCst) && installs >= p.min_installs {
            break;
        }
        let cwd = work.join(format!("install-{n}"));
        std::fs::create_dir_all(&cwd)?;
        let mut cmd = crate::procnet::command(&bin, &dirs[i], &cwd);
        cmd.args(["install", &names[k]]);
        let was_down = down_now.load(Ordering::SeqCst);
        let t = Instant::now();
        let out = cmd.output()?;
        let took = t.elapsed();
        let down_after = down_now.load(Ordering::SeqCst);
        installs += 1;
        let hit = [was_down, down_after]
            .iter()
            .any(|&v| v != usize::MAX && holders[k].contains(&v));
        let placed = cwd
            .join("peerpack_packages")
            .join(&names[k])
            .join("peerpack.toml")
            .exists();
        provider_down += usize::from(hit);
        if out.status.success() && placed {
            latencies.push(took);
            provider_down_ok += usize::from(hit);
            if was_down != usize::MAX || down_after != usize::MAX {
                while_down.push(took);
            }
            holders[k].insert(i);
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            let msg = format!(
                "node {i} installing {}: {} ({})",
                names[k],
                err.trim().lines().last().unwrap_or("no message"),
                out.status
            );
            eprintln!("  FAILED {msg}");
            failures.push(msg);
        }
        // Keep the directory count low.
        let _ = std::fs::remove_dir_all(&cwd);
    }
    let run_s = started.elapsed().as_secs_f64();
    if !done.load(Ordering::SeqCst) {
        eprintln!("  every pair installed before the churn ended; waiting for the restarts");
    }
    let ready = killer
        .join()
        .map_err(|_| anyhow::anyhow!("the killer thread panicked"))??;
    drop(net);

    let succeeded = latencies.len();
    let report = Report {
        nodes: p.nodes,
        victims: victims.len(),
        packs: p.packs,
        pack_bytes: p.pack_bytes,
        providers_per_pack: p.replicas + 1,
        down_s: p.down.as_secs_f64(),
        installs,
        succeeded,
        success: succeeded as f64 / installs.max(1) as f64,
        latency: summarize(&latencies),
        latency_while_down: summarize(&while_down),
        installs_provider_down: provider_down,
        succeeded_provider_down: provider_down_ok,
        failures,
        kills: ready.len(),
        restart_ready: summarize(&ready),
        run_s,
        samples_ms: latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect(),
    };
    let s = |s: &Summary| format!("{:.1}/{:.1}/{:.1}", s.min_ms, s.p50_ms, s.p99_ms);
    println!(
        "\n{:>5} {:>7} {:>9} {:>9} {:>9} {:>24} {:>24} {:>20}",
        "nodes",
        "victims",
        "installs",
        "succeeded",
        "success",
        "install min/p50/p99 ms",
        "while one is down",
        "restart to serving"
    );
    println!(
        "{:>5} {:>7} {:>9} {:>9} {:>8.2}% {:>24} {:>24} {:>20}",
        report.nodes,
        report.victims,
        report.installs,
        report.succeeded,
        report.success * 100.0,
        s(&report.latency),
        s(&report.latency_while_down),
        s(&report.restart_ready)
    );
    println!(
        "  {} installs of a pack one of whose providers was down: {} succeeded",
        report.installs_provider_down, report.succeeded_provider_down
    );
    for f in &report.failures {
        println!("  failed: {f}");
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(report)
}
