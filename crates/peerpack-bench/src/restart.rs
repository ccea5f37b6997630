//! Restart to serving, and memory, of a node holding a large catalogue.
//!
//! Fills a data directory with N signed package records through the store the node uses, then
//! starts the real `peerpack node` binary on it several times. For each start it times the
//! moment the node answers a search with hits through its CLI (`peerpack search`), and reads
//! the process's resident memory (VmRSS, and the peak VmHWM) from `/proc` once it has settled.
//! Before the starts, it times the Kademlia record reads the network event loop makes on that
//! catalogue (`RecordStore::get` on the node's DHT store), missing and then hitting its cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use peerpack_store::Store;

use crate::corpus::{self, Vocabulary};
use crate::stats::{Summary, summarize};

/// One start of the node.
#[derive(Debug, serde::Serialize)]
pub struct Start {
    /// Milliseconds from spawning the process to a search answered with hits.
    pub serving_ms: f64,
    /// Resident memory once settled, in MiB.
    pub rss_mib: f64,
    /// Peak resident memory, in MiB.
    pub peak_mib: f64,
    /// Of the resident memory, anonymous pages (the heap, stacks), in MiB.
    pub anon_mib: f64,
    /// Of the resident memory, pages of mapped files (the binary, the search index's segments,
    /// SQLite's memory map), in MiB.
    pub file_mib: f64,
    /// Threads of the process.
    pub threads: f64,
}

/// The whole run.
#[derive(Debug, serde::Serialize)]
pub struct Run {
    /// Packages in the catalogue.
    pub packages: usize,
    /// Seconds to generate, sign and store them.
    pub fill_s: f64,
    /// Kademlia record reads as the network event loop makes them (`RecordStore::get`),
    /// missing the cache: each a point read of the catalogue.
    pub dht_get_miss: Summary,
    /// The same reads again, now answered from the cache.
    pub dht_get_hit: Summary,
    /// Each start, in order.
    pub starts: Vec<Start>,
}

pub(crate) fn status_kib(pid: u32, field: &str) -> Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let line = text
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .context("malformed /proc status line")?
        .parse()?;
    Ok(kib)
}

/// Time `RecordStore::get` on the node's Kademlia store over the catalogue in `dir`: first
/// for keys not yet cached (each a point read of SQLite), then the same keys again.
fn dht_gets(dir: &Path, keys: &[Vec<u8>]) -> Result<(Summary, Summary)> {
    use peerpack_net::p2p::kad::RecordKey;
    use peerpack_net::p2p::kad::store::RecordStore;
    let (backing, _writer) = peerpack_node::dht_backing::StoreBacking::open(dir, Vec::new())?;
    let store = peerpack_net::dht_store::DhtStore::new(
        peerpack_net::p2p::PeerId::random(),
        Box::new(backing),
        peerpack_net::dht_store::DEFAULT_MAX_PROVIDER_RECORDS,
    );
    let time = |keys: &[Vec<u8>]| -> Result<Vec<Duration>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let key = RecordKey::new(k);
            let t = Instant::now();
            let found = store.get(&key).is_some();
            out.push(t.elapsed());
            anyhow::ensure!(found, "the DHT store did not find a stored record");
        }
        Ok(out)
    };
    let misses = time(keys)?;
    let hits = time(keys)?;
    Ok((summarize(&misses), summarize(&hits)))
}

pub(crate) fn fill(dir: &Path, n: usize, seed: u64) -> Result<(f64, Vec<Vec<u8>>)> {
    eprintln!("generating, signing and storing {n} packages...");
    let t = Instant::now();
    let vocab = Vocabulary::new();
    let records = corpus::records(n, seed, &vocab);
    // Keys of a spread of records, fewer than the DHT store caches, for `dht_gets`.
    let step = (n / 2_000).max(1);
    let keys = records
        .iter()
        .step_by(step)
        .map(|r| peerpack_net::protocol::record_key(r.name(), r.version()))
        .collect();
    let mut store = Store::open(dir)?;
    for chunk in records.chunks(2_000) {
        for r in store.insert_records(chunk, None)? {
            r?;
        }
    }
    anyhow::ensure!(
        store.db.package_count()? == n as u64,
        "the store holds {} packages, expected {n}",
        store.db.package_count()?
    );
    Ok((t.elapsed().as_secs_f64(), keys))
}

/// A `peerpack node` process this benchmark started, stopped (SIGTERM, then SIGKILL after a
/// minute) when dropped.
pub(crate) struct Running {
    child: std::process::Child,
    /// Its process id.
    pub pid: u32,
    /// Milliseconds from spawning it to its first search answered with hits.
    pub serving_ms: f64,
}

/// Start `bin` as a node on `dir`, listening on 127.0.0.1, and wait until it answers a search
/// with hits.
pub(crate) fn spawn_serving(bin: &Path, dir: &Path) -> Result<Running> {
    let t = Instant::now();
    let child = Command::new(bin)
        .args(["node", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .arg("--data-dir")
        .arg(dir)
        .env_remove("PEERPACK_DATA_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let pid = child.id();
    let mut running = Running {
        child,
        pid,
        serving_ms: 0.0,
    };
    running.serving_ms = loop {
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(600),
            "the node did not answer a search within 10 minutes"
        );
        if let Some(status) = running.child.try_wait()? {
            anyhow::bail!("the node exited with {status}");
        }
        let out = Command::new(bin)
            .arg("--data-dir")
            .arg(dir)
            .args(["--json", "search", "template"])
            .stderr(Stdio::null())
            .output()?;
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            if v.as_array().is_some_and(|a| !a.is_empty())
                || v["hits"].as_array().is_some_and(|a| !a.is_empty())
            {
                break t.elapsed().as_secs_f64() * 1e3;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(running)
}

impl Running {
    /// Its memory now.
    pub fn memory(&self) -> Result<Memory> {
        Ok(Memory {
            rss_mib: status_kib(self.pid, "VmRSS:")? / 1024.0,
            peak_mib: status_kib(self.pid, "VmHWM:")? / 1024.0,
            anon_mib: status_kib(self.pid, "RssAnon:")? / 1024.0,
            file_mib: status_kib(self.pid, "RssFile:")? / 1024.0,
            threads: status_kib(self.pid, "Threads:")?,
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while matches!(self.child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A process's memory, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Memory {
    /// Resident memory, in MiB.
    pub rss_mib: f64,
    /// Peak resident memory, in MiB.
    pub peak_mib: f64,
    /// Of the resident memory, anonymous pages (the heap, stacks), in MiB.
    pub anon_mib: f64,
    /// Of the resident memory, pages of mapped files (the binary, the search index's segments,
    /// SQLite's memory map), in MiB.
    pub file_mib: f64,
    /// Threads of the process.
    pub threads: f64,
}

fn start_once(bin: &Path, dir: &Path, settle: Duration) -> Result<Start> {
    let node = spawn_serving(bin, dir)?;
    std::thread::sleep(settle);
    let m = node.memory()?;
    Ok(Start {
        serving_ms: node.serving_ms,
        rss_mib: m.rss_mib,
        peak_mib: m.peak_mib,
        anon_mib: m.anon_mib,
        file_mib: m.file_mib,
        threads: m.threads,
    })
}

/// The peerpack binary: `bin`, or the one beside this benchmark; an error naming how to
/// build it when it is not there.
pub(crate) fn peerpack_bin(bin: Option<PathBuf>) -> Result<PathBuf> {
    let bin = match bin {
        Some(b) => b,
        None => std::env::current_exe()?
            .parent()
            .context("no directory for the benchmark binary")?
            .join("peerpack"),
    };
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build it (cargo build --release -p peerpack) or pass --peerpack PATH",
        bin.display()
    );
    Ok(bin)
}

/// Fill a catalogue of `n` packages, then start `bin` on it `starts` times.
pub fn run(
    n: usize,
    starts: usize,
    seed: u64,
    bin: Option<PathBuf>,
    json: Option<&Path>,
) -> Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful figures");
    }
    let bin = peerpack_bin(bin)?;
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let (fill_s, keys) = fill(dir.path(), n, seed)?;
    let (dht_get_miss, dht_get_hit) = dht_gets(dir.path(), &keys)?;
    let mut run = Run {
        packages: n,
        fill_s,
        dht_get_miss,
        dht_get_hit,
        starts: Vec::new(),
    };
    for i in 0..starts {
        let s = start_once(&bin, dir.path(), Duration::from_secs(3))?;
        eprintln!(
            "start {}: serving after {:.0} ms, RSS {:.1} MiB (peak {:.1} MiB; anonymous {:.1}, files {:.1}; {} threads)",
            i + 1,
            s.serving_ms,
            s.rss_mib,
            s.peak_mib,
            s.anon_mib,
            s.file_mib,
            s.threads
        );
        run.starts.push(s);
    }
    println!(
        "{} packages (filled in {:.1} s), {} starts",
        run.packages,
        run.fill_s,
        run.starts.len()
    );
    for (what, s) in [
        ("DHT get, cache miss", &run.dht_get_miss),
        ("DHT get, cache hit ", &run.dht_get_hit),
    ] {
        println!(
            "{what}: {} gets, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            s.count, s.p50_ms, s.p99_ms, s.max_ms
        );
    }
    println!("start  serving_ms  rss_mib  peak_mib");
    for (i, s) in run.starts.iter().enumerate() {
        println!(
            "{:>5}  {:>10.0}  {:>7.1}  {:>8.1}",
            i + 1,
            s.serving_ms,
            s.rss_mib,
            s.peak_mib
        );
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(&run)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
