//! `peerpack-bench telemetry`: what tracing and metrics cost a node's searches and downloads,
//! with them off, with the default metrics, and with spans and metrics exported over OTLP, in
//! one run.
//!
//! Each round of each mode is a process of its own (this binary, `--worker MODE`), because a
//! process has one global tracing subscriber: the parent runs the rounds interleaved (off,
//! metrics, spans, otlp, metrics, …) so that the machine's drift spreads over every mode alike. A round
//! starts two nodes on 127.0.0.1 in the worker: a provider holding an archive and a downloader
//! whose catalogue holds N packages. It times Q searches through the node's own search (the
//! path `GET /v1/search` takes: the index, the provider lists, the histogram and the span),
//! then D downloads of the archive from the provider (`download::fetch`: providers, outline,
//! every piece requested, checked and written, the fsync), emptying the store between them.
//!
//! Modes:
//! - `off`: the node's instruments have no reader (`Telemetry::off`), so nothing aggregates,
//!   and no tracing subscriber is installed, so spans cost a check of a global flag;
//! - `metrics`: a node as it runs by default: every instrument aggregated for `/metrics`, no
//!   span exported (no subscriber: the log is left out of every mode);
//! - `spans`: metrics as above, and every span at `INFO` built by the same tracing layer as in
//!   `otlp` (`otlp::span_layer`), then dropped: a tracer provider with no exporter. The cost of
//!   making the spans, apart from sending them;
//! - `otlp`: metrics as above, also pushed over OTLP/HTTP every second, and every span at
//!   `INFO` exported over OTLP/HTTP through the SDK's batch processor, to a real collector
//!   (rotel, started here with its blackhole exporter, or `--collector URL`).
//!
//! libp2p's own metrics (libp2p-metrics) are recorded in every mode: the network layer always
//! feeds them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use peerpack_node::{Config, Node};
use serde::{Deserialize, Serialize};

use crate::corpus::{self, Rng, Vocabulary};
use crate::stats::{Summary, summarize};

const MIB: u64 = 1024 * 1024;
const NAME: &str = "telemetry-payload";

/// The modes, in the order each round runs them.
pub const MODES: [&str; 4] = ["off", "metrics", "spans", "otlp"];

/// What one worker measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Round {
    /// The mode.
    pub mode: String,
    /// Latency of each search, ms.
    pub search_ms: Vec<f64>,
    /// Time of each download, ms.
    pub download_ms: Vec<f64>,
    /// Archive size, bytes.
    pub archive_bytes: u64,
}

/// One mode over every round.
#[derive(Debug, Serialize)]
pub struct ModeSummary {
    /// The mode.
    pub mode: String,
    /// Every search of every round.
    pub search: Summary,
    /// Median over rounds of each round's median search, ms.
    pub search_p50_of_rounds_ms: f64,
    /// Median download time over every download of every round, ms.
    pub download_median_ms: f64,
    /// Download rate at that median, MiB/s.
    pub download_mib_per_s: f64,
    /// Each round's median download, ms.
    pub download_rounds_ms: Vec<f64>,
}

/// The whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Packages in the downloader's catalogue.
    pub packages: usize,
    /// Archive size, bytes.
    pub archive_bytes: u64,
    /// Where spans and metrics went in the `otlp` mode.
    pub collector: String,
    /// Per mode.
    pub modes: Vec<ModeSummary>,
    /// Overhead over `off`, percent, per mode: (search p50, search p99, download median).
    pub overhead_percent: Vec<(String, f64, f64, f64)>,
    /// Every round, as measured.
    pub rounds: Vec<Round>,
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

/// Queries of the search benchmark's mix, over the corpus vocabulary.
fn queries(n: usize, vocab: &Vocabulary) -> Vec<String> {
    let mut rng = Rng::new(7);
    (0..n)
        .map(|i| match i % 3 {
            0 => vocab.words[rng.below(corpus::COMMON_RANKS)].clone(),
            1 => vocab.words[corpus::RARE_FROM + rng.below(corpus::VOCAB - corpus::RARE_FROM)]
                .clone(),
            _ => format!(
                "{} {}",
                vocab.words[rng.below(corpus::COMMON_RANKS)],
                vocab.words[rng.below(200)]
            ),
        })
        .collect()
}

/// A collector for the `otlp` mode: rotel, with its blackhole exporter.
struct Rotel {
    child: Child,
    endpoint: String,
}

impl Rotel {
    fn start(agent: &Path, work: &Path) -> Result<Self> {
        let port = free_port()?;
        let grpc = free_port()?;
        let child = Command::new(agent)
            .args(["start", "--exporter", "blackhole"])
            .arg("--otlp-http-endpoint")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--otlp-grpc-endpoint")
            .arg(format!("127.0.0.1:{grpc}"))
            .arg("--pid-file")
            .arg(work.join("rotel.pid"))
            .arg("--log-file")
            .arg(work.join("rotel.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", agent.display()))?;
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(30) {
                bail!("rotel did not listen on 127.0.0.1:{port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The rotel agent: `--rotel`, `ROTEL_AGENT`, or the one inside the `rotel` Python package.
fn rotel_agent() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ROTEL_AGENT") {
        return Some(PathBuf::from(p));
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))",
        ])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && path.exists()).then_some(path)
}

/// The parent: prepare the data, run the rounds, report.
#[allow(clippy::too_many_arguments)]
pub fn run(
    packages: usize,
    queries_n: usize,
    size_mib: u64,
    downloads: usize,
    rounds: usize,
    collector: Option<String>,
    json: Option<&Path>,
    work_dir: Option<PathBuf>,
) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let work = match &work_dir {
        Some(w) => {
            std::fs::create_dir_all(w)?;
            w.as_path()
        }
        None => tmp.path(),
    };
    let (_rotel, endpoint) = match collector {
        Some(url) => (None, url),
        None => {
            let agent = rotel_agent().context(
                "no OTLP collector: pass --collector URL, or install rotel (pip install rotel==0.0.1a15) or set ROTEL_AGENT",
            )?;
            let r = Rotel::start(&agent, work)?;
            let e = r.endpoint.clone();
            (Some(r), e)
        }
    };
    eprintln!("generating, signing and storing {packages} packages...");
    let downloader = work.join("downloader");
    {
        let vocab = Vocabulary::new();
        let records = corpus::records(packages, 3, &vocab);
        let mut store = peerpack_store::Store::open(&downloader)?;
        for chunk in records.chunks(2_000) {
            for r in store.insert_records(chunk, None)? {
                r?;
            }
        }
    }
    let package = work.join("package");
    crate::download::package(&package, NAME, size_mib * MIB)?;
    let exe = std::env::current_exe()?;
    let mut all = Vec::new();
    for round in 0..rounds {
        // Rotate the order, so that no mode always runs first after the previous round.
        for k in 0..MODES.len() {
            let mode = MODES[(round + k) % MODES.len()];
            let out = Command::new(&exe)
                .args(["telemetry", "--worker", mode])
                .arg("--packages")
                .arg(packages.to_string())
                .arg("--queries")
                .arg(queries_n.to_string())
                .arg("--downloads")
                .arg(downloads.to_string())
                .arg("--collector")
                .arg(&endpoint)
                .arg("--work-dir")
                .arg(work)
                .stderr(Stdio::inherit())
                .output()?;
            if !out.status.success() {
                bail!("the {mode} worker failed ({})", out.status);
            }
            let r: Round = serde_json::from_slice(&out.stdout)
                .context("the worker's answer is not a round")?;
            eprintln!(
                "  round {} {:<8} search p50 {:.3} ms p99 {:.3} ms, download median {:.1} ms",
                round + 1,
                mode,
                summarize(&to_durations(&r.search_ms)).p50_ms,
                summarize(&to_durations(&r.search_ms)).p99_ms,
                median(&r.download_ms)
            );
            all.push(r);
        }
    }
    let archive_bytes = all.first().map_or(0, |r| r.archive_bytes);
    let modes: Vec<ModeSummary> = MODES
        .iter()
        .map(|mode| {
            let of: Vec<&Round> = all.iter().filter(|r| r.mode == *mode).collect();
            let searches: Vec<f64> = of.iter().flat_map(|r| r.search_ms.clone()).collect();
            let downloads: Vec<f64> = of.iter().flat_map(|r| r.download_ms.clone()).collect();
            let d = median(&downloads);
            ModeSummary {
                mode: (*mode).to_owned(),
                search: summarize(&to_durations(&searches)),
                search_p50_of_rounds_ms: median(
                    &of.iter()
                        .map(|r| summarize(&to_durations(&r.search_ms)).p50_ms)
                        .collect::<Vec<_>>(),
                ),
                download_median_ms: d,
                download_mib_per_s: archive_bytes as f64 / MIB as f64 / (d / 1e3),
                download_rounds_ms: of.iter().map(|r| median(&r.download_ms)).collect(),
            }
        })
        .collect();
    let base = &modes[0];
    let pct = |x: f64, b: f64| if b > 0.0 { (x / b - 1.0) * 100.0 } else { 0.0 };
    let overhead = modes[1..]
        .iter()
        .map(|m| {
            (
                m.mode.clone(),
                pct(m.search.p50_ms, base.search.p50_ms),
                pct(m.search.p99_ms, base.search.p99_ms),
                pct(m.download_median_ms, base.download_median_ms),
            )
        })
        .collect::<Vec<_>>();
    println!(
        "\ntelemetry overhead: {packages} packages, {queries_n} searches and {downloads} downloads of {:.0} MiB per round, {rounds} rounds per mode, interleaved",
        archive_bytes as f64 / MIB as f64
    );
    println!(
        "{:<8} {:>14} {:>14} {:>18} {:>14}",
        "mode", "search p50 ms", "search p99 ms", "download median", "MiB/s"
    );
    for m in &modes {
        println!(
            "{:<8} {:>14.3} {:>14.3} {:>15.1} ms {:>14.1}",
            m.mode, m.search.p50_ms, m.search.p99_ms, m.download_median_ms, m.download_mib_per_s
        );
    }
    for (mode, p50, p99, dl) in &overhead {
        println!(
            "{mode} over off: search p50 {p50:+.1}%, search p99 {p99:+.1}%, download time {dl:+.1}%"
        );
    }
    let report = Report {
        packages,
        archive_bytes,
        collector: endpoint,
        modes,
        overhead_percent: overhead,
        rounds: all,
    };
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(())
}

fn to_durations(ms: &[f64]) -> Vec<Duration> {
    ms.iter()
        .map(|m| Duration::from_secs_f64(m / 1e3))
        .collect()
}

/// One round in this process: install the mode's telemetry, start the nodes, measure, print
/// the round as JSON on stdout.
pub fn worker(
    mode: &str,
    packages: usize,
    queries_n: usize,
    downloads: usize,
    collector: &str,
    work: &Path,
) -> Result<()> {
    // The span exporter's batch processor and the OTLP metric reader; nothing in the other
    // modes.
    let otlp = peerpack_node::otlp::Otlp {
        endpoint: Some(collector.to_owned()),
        protocol: peerpack_node::otlp::Protocol::HttpProtobuf,
        traces: true,
        metrics: true,
        interval: Duration::from_secs(1),
    };
    let tracer = match mode {
        "otlp" => otlp.tracer_provider()?,
        "spans" => Some(opentelemetry_sdk::trace::SdkTracerProvider::builder().build()),
        "off" | "metrics" => None,
        other => bail!("unknown mode {other:?}: one of {MODES:?}"),
    };
    if let Some(p) = &tracer {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        // The layer and filter `peerpack node` installs for its span export.
        tracing_subscriber::registry()
            .with(peerpack_node::otlp::span_layer(p).with_filter(
                tracing_subscriber::EnvFilter::new(peerpack_node::otlp::SPAN_FILTER),
            ))
            .init();
    }
    let telemetry = Arc::new(match mode {
        "off" => peerpack_node::telemetry::Telemetry::off(),
        "metrics" | "spans" => peerpack_node::telemetry::Telemetry::new(),
        _ => peerpack_node::telemetry::Telemetry::try_with(|b| otlp.add_metrics(b))?,
    });
    let round = crate::block_on(measure(
        mode,
        packages,
        queries_n,
        downloads,
        telemetry.clone(),
        work,
    ))?;
    telemetry.shutdown();
    if let Some(p) = tracer {
        let _ = p.force_flush();
        let _ = p.shutdown();
    }
    println!("{}", serde_json::to_string(&round)?);
    Ok(())
}

async fn measure(
    mode: &str,
    packages: usize,
    queries_n: usize,
    downloads: usize,
    telemetry: Arc<peerpack_node::telemetry::Telemetry>,
    work: &Path,
) -> Result<Round> {
    let mut pc = Config::loopback(work.join("provider"));
    pc.telemetry = Some(telemetry.clone());
    let provider = Node::start(pc).await?;
    let mut dc = Config::loopback(work.join("downloader"));
    // The downloader keeps no cache: gc empties it between downloads.
    dc.cache_quota = 0;
    dc.telemetry = Some(telemetry);
    let downloader = Node::start(dc).await?;
    let p = provider.inner().clone();
    let d = downloader.inner().clone();
    // The provider's data lives from round to round: it publishes once.
    let published = match p.info(NAME).await {
        Ok(info) => {
            let v = &info.versions[0];
            (v.content_id.parse()?, v.archive_size)
        }
        Err(_) => {
            let r = peerpack_node::publish::publish(&p, work.join("package")).await?;
            (r.content_id, r.archive_size)
        }
    };
    d.bootstrap(&[provider.listen_addrs()[0].to_string()])
        .await?;
    let start = Instant::now();
    while d.info(NAME).await.is_err() {
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the downloader never learned {NAME}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let vocab = Vocabulary::new();
    let qs = queries(queries_n, &vocab);
    // A warm-up pass, untimed: the index's pages in memory, as on a node that has served.
    for q in qs.iter().take(200) {
        d.search(search(q)).await?;
    }
    let mut search_ms = Vec::with_capacity(qs.len());
    for q in &qs {
        let t = Instant::now();
        let hits = d.search(search(q)).await?;
        search_ms.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(hits);
    }
    anyhow::ensure!(
        d.status().await?.packages >= packages as u64,
        "the downloader's catalogue lost packages"
    );

    let (id, size) = published;
    let mut download_ms = Vec::with_capacity(downloads);
    for _ in 0..downloads {
        let t = Instant::now();
        peerpack_node::download::fetch(&d, id, size, Arc::default()).await?;
        download_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let r = d.gc(false).await?;
        if r.removed.is_empty() {
            bail!("gc removed nothing from the downloader");
        }
    }
    downloader.shutdown().await;
    provider.shutdown().await;
    Ok(Round {
        mode: mode.to_owned(),
        search_ms,
        download_ms,
        archive_bytes: size,
    })
}

fn search(q: &str) -> peerpack_node::queries::Search {
    peerpack_node::queries::Search {
        q: q.to_owned(),
        category: None,
        tags: None,
        limit: Some(10),
        min_reputation: None,
    }
}
