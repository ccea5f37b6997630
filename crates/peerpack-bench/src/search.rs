//! The search benchmark.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use peerpack_store::{SearchIndex, SearchQuery};

use crate::corpus::{self, COMMON_RANKS, RARE_FROM, Rng, VOCAB, Vocabulary};
use crate::stats::{Summary, summarize};

/// Results of one catalogue size.
#[derive(Debug, serde::Serialize)]
struct Run {
    packages: usize,
    generate_s: f64,
    build_s: f64,
    docs_per_s: f64,
    index_bytes: u64,
    /// Latency of publishing one more package into the live index (upsert + commit + reload).
    upsert: Summary,
    all: Summary,
    rare: Summary,
    common: Summary,
    two_words: Summary,
    filtered: Summary,
    mean_hits: f64,
}

#[derive(Clone, Copy)]
enum Class {
    Rare,
    Common,
    TwoWords,
    Filtered,
}

fn queries(n: usize, seed: u64, vocab: &Vocabulary) -> Vec<(Class, SearchQuery)> {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let words = &vocab.words;
    (0..n)
        .map(|i| {
            let q = |text: String| SearchQuery {
                text,
                limit: 10,
                ..Default::default()
            };
            match i % 5 {
                0 | 1 => (
                    Class::Rare,
                    q(words[RARE_FROM + rng.below(VOCAB - RARE_FROM)].clone()),
                ),
                2 | 3 => (Class::Common, q(words[rng.below(COMMON_RANKS)].clone())),
                _ if i % 10 == 4 => (
                    Class::TwoWords,
                    q(format!(
                        "{} {}",
                        words[rng.below(COMMON_RANKS)],
                        words[rng.below(200)]
                    )),
                ),
                _ => (
                    Class::Filtered,
                    SearchQuery {
                        text: words[rng.below(COMMON_RANKS)].clone(),
                        tags: vec![words[rng.below(COMMON_RANKS)].clone()],
                        limit: 10,
                        ..Default::default()
                    },
                ),
            }
        })
        .collect()
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn run_one(n: usize, n_queries: usize, seed: u64, vocab: &Vocabulary) -> Result<Run> {
    eprintln!("generating and signing {n} packages...");
    let t = Instant::now();
    let mut records = corpus::records(n + 50, seed, vocab);
    let extra = records.split_off(n);
    let generate_s = t.elapsed().as_secs_f64();

    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    eprintln!("building the index...");
    let t = Instant::now();
    let index = SearchIndex::open(dir.path())?;
    index.rebuild(&records, None)?;
    let build_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        index.len() == n as u64,
        "index holds {} documents, expected {n}",
        index.len()
    );

    let mut upserts = Vec::with_capacity(extra.len());
    for r in &extra {
        let t = Instant::now();
        index.upsert(std::slice::from_ref(r))?;
        upserts.push(t.elapsed());
    }

    let qs = queries(n_queries + 200, seed, vocab);
    let (warmup, timed) = qs.split_at(200);
    for (_, q) in warmup {
        index.search(q)?;
    }
    eprintln!("running {} queries...", timed.len());
    let mut by_class: [Vec<Duration>; 4] = Default::default();
    let mut all = Vec::with_capacity(timed.len());
    let mut hits = 0usize;
    for (class, q) in timed {
        let t = Instant::now();
        let found = index.search(q)?;
        let d = t.elapsed();
        hits += found.len();
        all.push(d);
        by_class[*class as usize].push(d);
    }
    Ok(Run {
        packages: n,
        generate_s,
        build_s,
        docs_per_s: n as f64 / build_s,
        index_bytes: dir_size(dir.path()),
        upsert: summarize(&upserts),
        all: summarize(&all),
        rare: summarize(&by_class[Class::Rare as usize]),
        common: summarize(&by_class[Class::Common as usize]),
        two_words: summarize(&by_class[Class::TwoWords as usize]),
        filtered: summarize(&by_class[Class::Filtered as usize]),
        mean_hits: hits as f64 / timed.len().max(1) as f64,
    })
}

/// Run the benchmark for each size; print a table and optionally write JSON.
pub fn run(sizes: &[usize], n_queries: usize, seed: u64, json: Option<&Path>) -> Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful figures");
    }
    let vocab = Vocabulary::new();
    let mut runs = Vec::new();
    for &n in sizes {
        anyhow::ensure!(n > 0, "--packages must be at least 1");
        runs.push(run_one(n, n_queries, seed, &vocab)?);
    }

    println!(
        "\n{:>9} {:>8} {:>10} {:>9} | {:>8} {:>8} | {:>8} {:>8} | {:>8} {:>8} | {:>8} {:>8} | {:>9}",
        "packages",
        "build s",
        "docs/s",
        "index MB",
        "all p50",
        "all p99",
        "rare p50",
        "rare p99",
        "comm p50",
        "comm p99",
        "filt p50",
        "filt p99",
        "upsert ms"
    );
    for r in &runs {
        println!(
            "{:>9} {:>8.2} {:>10.0} {:>9.1} | {:>8.3} {:>8.3} | {:>8.3} {:>8.3} | {:>8.3} {:>8.3} | {:>8.3} {:>8.3} | {:>9.1}",
            r.packages,
            r.build_s,
            r.docs_per_s,
            r.index_bytes as f64 / 1e6,
            r.all.p50_ms,
            r.all.p99_ms,
            r.rare.p50_ms,
            r.rare.p99_ms,
            r.common.p50_ms,
            r.common.p99_ms,
            r.filtered.p50_ms,
            r.filtered.p99_ms,
            r.upsert.p50_ms,
        );
    }
    println!(
        "(latencies in ms; {n_queries} timed queries per run after 200 warm-up queries, top 10 results each)"
    );

    if let Some(path) = json {
        let doc = serde_json::json!({
            "benchmark": "search",
            "seed": seed,
            "queries_per_run": n_queries,
            "release_build": !cfg!(debug_assertions),
            "runs": runs,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
