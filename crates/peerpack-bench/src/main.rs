//! peerpack benchmarks.
//!
//! `peerpack-bench search` measures the search index the node uses: index build time and
//! query latency over a deterministic synthetic catalogue. Run it in release mode:
//!
//! ```text
//! cargo run --release -p peerpack-bench -- search [--packages N]... [--json FILE]
//! ```
//!
//! `peerpack-bench download` measures install throughput from 1 and 4 providers on loopback
//! beside a raw TCP copy and nginx + curl (nginx must be installed):
//!
//! ```text
//! cargo run --release -p peerpack-bench -- download [--size-mib N]... [--rounds R] [--json FILE]
//! ```
//!
//! `peerpack-bench restart` measures the time from starting `peerpack node` on a data directory
//! holding N packages to its first answered search, and the node's resident memory:
//!
//! ```text
//! cargo build --release -p peerpack -p peerpack-bench
//! target/release/peerpack-bench restart [--packages N] [--starts S] [--json FILE]
//! ```
//!
//! `peerpack-bench all` runs every harness below and prints one summary table:
//!
//! ```text
//! cargo build --release -p peerpack -p peerpack-bench
//! target/release/peerpack-bench all [--json FILE] [--quick]
//! ```
//!
//! `peerpack-bench propagation` measures the time from a `publish` call on one node until the
//! package is searchable on every node, in networks of real nodes in this process:
//!
//! ```text
//! cargo run --release -p peerpack-bench -- propagation [--nodes N]... [--publishes P] [--json FILE]
//! ```
//!
//! `peerpack-bench memory` measures the resident memory of an idle `peerpack node` with 20
//! peers at 10,000 and 100,000 packages, and memory per node of 100 nodes in this process:
//!
//! ```text
//! cargo build --release -p peerpack -p peerpack-bench
//! target/release/peerpack-bench memory [--packages N]... [--peers P] [--nodes M] [--json FILE]
//! ```
//!
//! `peerpack-bench cli` times whole `peerpack` commands (status, search over 100,000 packages,
//! publish, install of a small pack) in a network of 20 node processes:
//!
//! ```text
//! cargo build --release -p peerpack -p peerpack-bench
//! target/release/peerpack-bench cli [--nodes N] [--packages P] [--rounds R] [--json FILE]
//! ```
//!
//! `peerpack-bench plot` draws SVG charts of an `all --json` document:
//!
//! ```text
//! target/release/peerpack-bench plot --json all.json --out docs/benchmarks
//! ```
//!
//! `peerpack-bench churn` measures installs in a network of 50 node processes while a third of
//! them are killed with SIGKILL and restarted, one after the other:
//!
//! ```text
//! cargo build --release -p peerpack -p peerpack-bench
//! target/release/peerpack-bench churn [--nodes N] [--packs P] [--down-s S] [--json FILE]
//! ```
//!
//! `peerpack-bench warm-install` times installs of what the node already holds, by each
//! `install.link` (extract, auto, copy, hardlink), beside cold installs, through the CLI:
//!
//! ```text
//! cargo build --release -p peerpack -p peerpack-bench
//! target/release/peerpack-bench warm-install [--size-mib N] [--work-dir DIR] [--json FILE]
//! ```
//!
//! `peerpack-bench telemetry` measures what tracing and metrics cost searches and downloads:
//! off, default metrics, and spans and metrics exported over OTLP to rotel, interleaved:
//!
//! ```text
//! cargo run --release -p peerpack-bench -- telemetry [--packages N] [--rounds R] [--json FILE]
//! ```

mod all;
mod churn;
mod cli;
mod corpus;
mod dht;
mod dht_procs;
mod download;
mod memory;
mod net;
mod plot;
mod procnet;
mod propagation;
mod restart;
mod search;
mod stats;
mod telemetry;
mod warm;
mod web;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Benchmarks for peerpack. Build with --release: debug figures are meaningless.
#[derive(Debug, Parser)]
#[command(name = "peerpack-bench", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Index build time and query latency of the search index.
    ///
    /// Generates N realistic synthetic packages (deterministic for a given seed), signs their
    /// records, builds the on-disk tantivy index through the same code path the node uses, then
    /// runs a mix of queries: rare words, very common words, two-word queries and filtered
    /// queries. Reports p50/p99 latency per class and overall.
    Search {
        /// Catalogue sizes to run (repeatable) [default: 10000 and 100000].
        #[arg(long = "packages", value_name = "N")]
        packages: Vec<usize>,
        /// Number of timed queries per run.
        #[arg(long, default_value_t = 2000)]
        queries: usize,
        /// Seed of the generator.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Also write the results as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Install throughput from 1 and 4 providers, beside raw TCP, nginx + curl and sendme.
    ///
    /// Runs five nodes in this process on 127.0.0.1. For each size, a raw TCP copy and curl
    /// from nginx (and `sendme receive`, where sendme is installed) fetch the same archive into a file; then a downloader installs it from one
    /// provider, from one provider capped at a quarter of that rate, from four providers, and
    /// from four providers each capped at that quarter. Reports medians and the goal ratios.
    Download {
        /// Archive sizes in MiB (repeatable) [default: 1, 64 and 1024].
        #[arg(long = "size-mib", value_name = "N")]
        sizes: Vec<u64>,
        /// Rounds per configuration (capped configurations, and sizes from 512 MiB, run at
        /// most 3).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Also write the results as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Directory for the nodes' data (default: the system temp directory).
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
    },
    /// Restart to serving, and resident memory, of a node holding a large catalogue.
    ///
    /// Stores N signed package records in a fresh data directory, then starts the real
    /// `peerpack node` binary on it S times. Reports, for each start, the time until a search
    /// through the CLI answers with hits, and the node's RSS (and peak) three seconds later.
    Restart {
        /// Packages in the catalogue.
        #[arg(long = "packages", default_value_t = 100_000)]
        packages: usize,
        /// Starts of the node on the same data directory.
        #[arg(long, default_value_t = 3)]
        starts: usize,
        /// Seed of the generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The peerpack binary (default: beside this one).
        #[arg(long = "peerpack", value_name = "PATH")]
        peerpack: Option<PathBuf>,
        /// Also write the results as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Kademlia lookups in networks of N real nodes in this process, over TCP on 127.0.0.1.
    ///
    /// Starts N nodes (catalogue sync off: only the DHT carries records), lets them settle,
    /// stores K signed records on random nodes (each put into the DHT and its archive
    /// provided), then times Q get_record and Q get_providers queries from random other
    /// nodes. Reports min, p50 and p99 latency, the share found, peers contacted per query,
    /// connections per node and the process's memory.
    ///
    /// With --processes P, and no --nodes, it runs P `peerpack node` processes instead: K small
    /// packs are published with `peerpack publish --wait-dht`, and Q queries of each kind go
    /// through random nodes' HTTP API (`GET /v1/dht/names/{name}`, `/v1/dht/providers/{id}`),
    /// timed by each node's own clock.
    Dht {
        /// Network sizes (repeatable) [default: 50].
        #[arg(long = "nodes", value_name = "N")]
        nodes: Vec<usize>,
        /// Node processes instead of in-process nodes (at least 4).
        #[arg(long, value_name = "P", conflicts_with = "nodes")]
        processes: Option<usize>,
        /// With --processes: the peerpack binary (default: beside this one).
        #[arg(long = "peerpack", value_name = "PATH", requires = "processes")]
        peerpack: Option<PathBuf>,
        /// Records put into the DHT.
        #[arg(long, default_value_t = 100)]
        keys: usize,
        /// Timed queries of each kind.
        #[arg(long, default_value_t = 300)]
        queries: usize,
        /// Seconds the network settles before the puts.
        #[arg(long, default_value_t = 10)]
        settle_s: u64,
        /// Also write the results as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Every benchmark, one after the other, with one JSON document and a summary table.
    ///
    /// Runs dht (50 and 200 nodes, then 20 processes), search (10,000 to 1,000,000 packages), propagation (100
    /// and 200 nodes), memory, restart (100,000 packages), telemetry, cli, churn, warm-install,
    /// and download where nginx is installed. Prints a table of each figure, its goal, what was measured and the earlier
    /// system's stated target. Needs the release `peerpack` binary beside this one.
    All {
        /// Write every harness's results and the summary as one JSON document to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Tiny sizes, to check that every harness runs (its figures mean nothing).
        #[arg(long)]
        quick: bool,
    },
    /// Memory of an idle node process with peers, by catalogue size, and per node of a
    /// network in this process.
    ///
    /// For each N: fills a data directory with N signed records, starts the real `peerpack
    /// node` on it, has P nodes of this process dial it, and reads its resident memory (total,
    /// anonymous, mapped files, peak, threads) once settled. Then starts M nodes in this
    /// process and reports this process's memory per node.
    Memory {
        /// Catalogue sizes (repeatable) [default: 10000 and 100000].
        #[arg(long = "packages", value_name = "N")]
        packages: Vec<usize>,
        /// Peers that dial the idle node.
        #[arg(long, default_value_t = 20)]
        peers: usize,
        /// Nodes of the in-process network (0: none).
        #[arg(long, default_value_t = 100)]
        nodes: usize,
        /// Seconds to settle before each reading.
        #[arg(long, default_value_t = 10)]
        settle_s: u64,
        /// The peerpack binary (default: beside this one).
        #[arg(long = "peerpack", value_name = "PATH")]
        peerpack: Option<PathBuf>,
        /// Also write the results as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// From a publish on one node until the package is searchable on every node.
    ///
    /// Starts N nodes in this process over TCP on 127.0.0.1 (catalogue sync on, as `peerpack
    /// demo` starts them), lets them settle, then P times publishes a new small package from a
    /// random node and searches every other node for it until each finds it. Reports the
    /// publish call's latency, the time until every node finds it and until each node does
    /// (min, p50, p99), and peers connected per node before and after.
    Propagation {
        /// Network sizes (repeatable) [default: 100 and 200].
        #[arg(long = "nodes", value_name = "N")]
        nodes: Vec<usize>,
        /// Packages published, one after the other.
        #[arg(long, default_value_t = 20)]
        publishes: usize,
        /// Seconds the network settles before the publishes.
        #[arg(long, default_value_t = 20)]
        settle_s: u64,
        /// Also write the results as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// What tracing and metrics cost searches and downloads: off, default metrics, spans made
    /// but not exported, and spans and metrics exported over OTLP, interleaved in one run.
    ///
    /// Each round of each mode runs in a process of its own (one tracing subscriber per
    /// process): two nodes on 127.0.0.1, a downloader whose catalogue holds N packages and a
    /// provider of one archive. A round times Q searches through the node's search, then D
    /// downloads of the archive. The `otlp` mode exports to rotel (started here, with its
    /// blackhole exporter; from ROTEL_AGENT or the `rotel` Python package) or to --collector.
    Telemetry {
        /// Packages in the downloader's catalogue.
        #[arg(long = "packages", default_value_t = 10_000)]
        packages: usize,
        /// Timed searches per round.
        #[arg(long, default_value_t = 2000)]
        queries: usize,
        /// Archive size in MiB.
        #[arg(long = "size-mib", default_value_t = 64)]
        size_mib: u64,
        /// Timed downloads per round.
        #[arg(long, default_value_t = 3)]
        downloads: usize,
        /// Rounds per mode.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// An OTLP/HTTP collector's base URL for the `otlp` mode (default: start rotel).
        #[arg(long, value_name = "URL")]
        collector: Option<String>,
        /// Also write the results as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Run one round of MODE in this process and print it as JSON (used by the parent).
        #[arg(long, value_name = "MODE", hide = true)]
        worker: Option<String>,
        /// Directory for the nodes' data, kept afterwards (default: a temporary directory).
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
    },
    /// The web page's sizes and server render times against a large catalogue.
    ///
    /// Fills a node's catalogue with P packages, starts it and a second node as processes on
    /// 127.0.0.1, then fetches each page R times over HTTP: the front page (every package
    /// matching), a search, a tag filter, package pages, the publisher page and the network
    /// page. Reports the server's render time (its Server-Timing header), the round trip and
    /// the page size.
    Web {
        /// Packages in the node's catalogue.
        #[arg(long, default_value_t = 100_000)]
        packages: usize,
        /// Fetches of each page.
        #[arg(long, default_value_t = 200)]
        rounds: usize,
        /// The peerpack binary (default: beside this one).
        #[arg(long = "peerpack", value_name = "PATH")]
        peerpack: Option<PathBuf>,
        /// Also write the results as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// What a user waits for at the command line: status, search, publish and install.
    ///
    /// Starts N `peerpack node` processes on 127.0.0.1, the first holding a catalogue of P
    /// packages (the others light: no catalogue sync), then times whole `peerpack` processes:
    /// `--version` (the floor), `status`, `search` on the large catalogue, `publish` of a new
    /// name and of a new version, and a cold `install` of each new small pack on another node.
    Cli {
        /// Node processes.
        #[arg(long, default_value_t = 20)]
        nodes: usize,
        /// Packages in the searched node's catalogue.
        #[arg(long, default_value_t = 100_000)]
        packages: usize,
        /// Runs of each command.
        #[arg(long, default_value_t = 50)]
        rounds: usize,
        /// The peerpack binary (default: beside this one).
        #[arg(long = "peerpack", value_name = "PATH")]
        peerpack: Option<PathBuf>,
        /// Also write the results as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// SVG charts of an `all --json` document: latency distributions, DHT latency against
    /// network size, and memory against catalogue size.
    Plot {
        /// The document `peerpack-bench all --json FILE` wrote.
        #[arg(long, value_name = "FILE")]
        json: PathBuf,
        /// Directory to write latency.svg, dht.svg and memory.svg into.
        #[arg(long, value_name = "DIR", default_value = "docs/benchmarks")]
        out: PathBuf,
    },
    /// Installing what the node already holds, by each `install.link`, beside a cold install.
    ///
    /// Starts 5 `peerpack node` processes on 127.0.0.1: a provider of a large pack (64 files
    /// adding up to --size-mib) and a small one (12 files, 4 KiB), and an installer for each of
    /// `extract`, `auto`, `copy` and `hardlink`. Times whole `peerpack install` processes: cold
    /// (the node holds nothing: download, check, unpack), then warm (the node holds the archive
    /// and, but for `extract`, keeps it unpacked), each into a fresh project.
    WarmInstall {
        /// Size of the large pack in MiB.
        #[arg(long = "size-mib", default_value_t = 64)]
        size_mib: u64,
        /// Installs of the large pack, cold and warm, per mode.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Installs of the small pack, cold and warm, per mode.
        #[arg(long, default_value_t = 30)]
        small_rounds: usize,
        /// Directory for the nodes' data and the projects (default: the system temp
        /// directory); on XFS or Btrfs, `auto` clones files.
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
        /// The peerpack binary (default: beside this one).
        #[arg(long = "peerpack", value_name = "PATH")]
        peerpack: Option<PathBuf>,
        /// Also write the results as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Installs while a third of the network is killed and restarted.
    ///
    /// Starts N `peerpack node` processes on 127.0.0.1 and publishes P packs, each installed
    /// by R other nodes so that it has R + 1 providers. Then a third of the nodes, one after the
    /// other, are killed with SIGKILL and started again on their data directories, while the
    /// others install packs they do not hold through the CLI. Reports the share of installs
    /// that succeed, their latency and every failure.
    Churn {
        /// Nodes in the network.
        #[arg(long, default_value_t = 50)]
        nodes: usize,
        /// Packs published.
        #[arg(long, default_value_t = 40)]
        packs: usize,
        /// KiB of data in each pack.
        #[arg(long, default_value_t = 256)]
        pack_kib: u64,
        /// Nodes that install each pack before the churn (and so provide it).
        #[arg(long, default_value_t = 2)]
        replicas: usize,
        /// Seconds each killed node stays down.
        #[arg(long, default_value_t = 3)]
        down_s: u64,
        /// Seconds to let the network settle after the start.
        #[arg(long, default_value_t = 10)]
        settle_s: u64,
        /// Installs to run at least.
        #[arg(long, default_value_t = 200)]
        min_installs: usize,
        /// The peerpack binary (default: beside this one).
        #[arg(long = "peerpack", value_name = "PATH")]
        peerpack: Option<PathBuf>,
        /// Also write the results as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
}

/// Run `f` to its end on a multi-threaded runtime, as the node runs.
fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Search {
            packages,
            queries,
            seed,
            json,
        } => {
            let sizes = if packages.is_empty() {
                vec![10_000, 100_000]
            } else {
                packages
            };
            search::run(&sizes, queries, seed, json.as_deref())
        }
        Command::Download {
            sizes,
            rounds,
            json,
            work_dir,
        } => {
            let sizes = if sizes.is_empty() {
                vec![1, 64, 1024]
            } else {
                sizes
            };
            block_on(download::run(&sizes, rounds, json.as_deref(), work_dir))
        }
        Command::Restart {
            packages,
            starts,
            seed,
            peerpack,
            json,
        } => restart::run(packages, starts, seed, peerpack, json.as_deref()),
        Command::Dht {
            processes: Some(processes),
            peerpack,
            keys,
            queries,
            settle_s,
            json,
            ..
        } => block_on(dht_procs::run(
            processes,
            keys,
            queries,
            std::time::Duration::from_secs(settle_s),
            peerpack,
            json.as_deref(),
        ))
        .map(drop),
        Command::Dht {
            nodes,
            processes: None,
            keys,
            queries,
            settle_s,
            json,
            ..
        } => {
            let sizes = if nodes.is_empty() { vec![50] } else { nodes };
            block_on(dht::run(
                &sizes,
                keys,
                queries,
                std::time::Duration::from_secs(settle_s),
                json.as_deref(),
            ))
        }
        Command::All { json, quick } => all::run(json.as_deref(), quick),
        Command::Plot { json, out } => plot::run(&json, &out),
        Command::Cli {
            nodes,
            packages,
            rounds,
            peerpack,
            json,
        } => cli::run(nodes, packages, rounds, peerpack, json.as_deref()).map(drop),
        Command::Web {
            packages,
            rounds,
            peerpack,
            json,
        } => web::run(packages, rounds, peerpack, json.as_deref()).map(drop),
        Command::Churn {
            nodes,
            packs,
            pack_kib,
            replicas,
            down_s,
            settle_s,
            min_installs,
            peerpack,
            json,
        } => churn::run(
            &churn::Params {
                nodes,
                packs,
                pack_bytes: pack_kib * 1024,
                replicas,
                down: std::time::Duration::from_secs(down_s),
                settle: std::time::Duration::from_secs(settle_s),
                min_installs,
            },
            peerpack,
            json.as_deref(),
        )
        .map(drop),
        Command::WarmInstall {
            size_mib,
            rounds,
            small_rounds,
            work_dir,
            peerpack,
            json,
        } => warm::run_bench(
            size_mib,
            rounds,
            small_rounds,
            peerpack,
            work_dir,
            json.as_deref(),
        )
        .map(drop),
        Command::Memory {
            packages,
            peers,
            nodes,
            settle_s,
            peerpack,
            json,
        } => {
            let sizes = if packages.is_empty() {
                vec![10_000, 100_000]
            } else {
                packages
            };
            memory::run(
                &sizes,
                peers,
                nodes,
                std::time::Duration::from_secs(settle_s),
                peerpack,
                json.as_deref(),
            )
            .map(drop)
        }
        Command::Propagation {
            nodes,
            publishes,
            settle_s,
            json,
        } => {
            let sizes = if nodes.is_empty() {
                vec![100, 200]
            } else {
                nodes
            };
            block_on(propagation::run(
                &sizes,
                publishes,
                std::time::Duration::from_secs(settle_s),
                json.as_deref(),
            ))
            .map(drop)
        }
        Command::Telemetry {
            packages,
            queries,
            size_mib,
            downloads,
            rounds,
            collector,
            json,
            worker,
            work_dir,
        } => match (worker, work_dir, collector) {
            (Some(mode), Some(work), Some(collector)) => {
                telemetry::worker(&mode, packages, queries, downloads, &collector, &work)
            }
            (Some(_), _, _) => anyhow::bail!("--worker needs --work-dir and --collector"),
            (None, work_dir, collector) => telemetry::run(
                packages,
                queries,
                size_mib,
                downloads,
                rounds,
                collector,
                json.as_deref(),
                work_dir,
            ),
        },
    }
}
