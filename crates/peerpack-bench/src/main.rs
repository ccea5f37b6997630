//! peerpack benchmarks.
//!
//! `peerpack-bench search` measures the search index the node uses: index build time and
//! query latency over a deterministic synthetic catalogue. Run it in release mode:
//!
//! ```text
//! cargo run --release -p peerpack-bench -- search [--packages N]... [--json FILE]
//! ```

mod corpus;
mod search;
mod stats;

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
    }
}
