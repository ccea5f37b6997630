//! `peerpack-bench web`: the web page's sizes and render times against a large catalogue.
//!
//! 1. Node 0's data directory is filled with N signed package records before it starts (the
//!    search benchmark's generator); a second node joins it, so that the network page has a
//!    peer.
//! 2. Each page is fetched R times over HTTP/1.1 from node 0, as a browser would load it:
//!    - `/`: the front page, every package matching (facets counted over all N);
//!    - `/?q=WORD`: a search, words drawn from the generator's vocabulary;
//!    - `/?tag=TAG`: a tag filter;
//!    - `/packages/NAME`: a package page, names drawn from the search results;
//!    - `/publishers/KEY`: the generator's one publisher, who owns every name (the page lists
//!      the first 500);
//!    - `/network`.
//!
//! Reported per page: the server's render time (its `Server-Timing` header: from the request
//! reaching the page's handler to the page being ready), the round trip as the client saw it,
//! and the page's size in bytes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::corpus::{Rng, Vocabulary};
use crate::procnet::ProcNet;
use crate::stats::{Summary, summarize};

/// One page's figures.
#[derive(Debug, Serialize)]
pub struct PageFigures {
    /// The kind of page, e.g. `/packages/NAME`.
    pub page: String,
    /// Render time on the server.
    pub render: Summary,
    /// Round trip seen by the client (connect, request, whole answer).
    pub round_trip: Summary,
    /// Smallest page, bytes.
    pub bytes_min: usize,
    /// Median page, bytes.
    pub bytes_p50: usize,
    /// Largest page, bytes.
    pub bytes_max: usize,
}

/// Figures of a run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Packages in the node's catalogue.
    pub packages: usize,
    /// Fetches of each page.
    pub rounds: usize,
    /// Each page's figures.
    pub pages: Vec<PageFigures>,
}

/// An answer: status, `Server-Timing` render duration, body.
struct Answer {
    status: u16,
    render: Option<Duration>,
    body: String,
}

/// `GET path` from `addr` over a new HTTP/1.1 connection, read to its end.
fn get(addr: &str, path: &str) -> Result<Answer> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("{path}: no end of headers"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{path}: no status"))?;
    let render = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("server-timing").then_some(v)
        })
        .and_then(|v| v.split("dur=").nth(1))
        .and_then(|d| d.trim().parse::<f64>().ok())
        .map(|ms| Duration::from_secs_f64(ms / 1e3));
    Ok(Answer {
        status,
        render,
        body: body.to_owned(),
    })
}

/// Every distinct `/prefix…"` link target in `html`.
fn links(html: &str, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = html
        .split(&format!("href=\"{prefix}"))
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|s| format!("{prefix}{s}"))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Run the benchmark.
pub fn run(
    packages: usize,
    rounds: usize,
    bin: Option<PathBuf>,
    json: Option<&Path>,
) -> Result<Report> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful figures");
    }
    let bin = crate::restart::peerpack_bin(bin)?;
    let tmp = tempfile::tempdir()?;
    let work = tmp.path();
    eprintln!("filling a catalogue of {packages} packages...");
    crate::restart::fill(&work.join("node-0"), packages, 1)?;
    let mut rng = Rng::new(0x3eb);
    eprintln!("starting 2 node processes...");
    let net = ProcNet::start(&bin, work, 2, &mut rng, |i| {
        if i == 0 {
            Vec::new()
        } else {
            vec!["--no-catalogue-sync".into()]
        }
    })?;
    let info =
        peerpack_api::RuntimeInfo::read(&peerpack_api::DataDir::new(net.nodes[0].dir.clone()))
            .context("node 0 wrote no node.json")?;
    let addr = info
        .api
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    std::thread::sleep(Duration::from_secs(2));

    // What to fetch: names and tags found on the pages themselves.
    let vocab = Vocabulary::new();
    let mut names = Vec::new();
    let mut tags = Vec::new();
    let mut publishers = Vec::new();
    for _ in 0..20 {
        let page = get(&addr, &format!("/?q={}", vocab.sample(&mut rng)))?;
        names.extend(links(&page.body, "/packages/"));
        tags.extend(links(&page.body, "/?tag="));
    }
    let front = get(&addr, "/")?;
    names.extend(links(&front.body, "/packages/"));
    tags.extend(links(&front.body, "/?tag="));
    if names.is_empty() || tags.is_empty() {
        bail!("the pages list no package or tag; is the catalogue empty?");
    }
    if let Some(n) = names.first() {
        publishers = links(&get(&addr, n)?.body, "/publishers/");
    }

    type Pick<'a> = Box<dyn FnMut(&mut Rng) -> String + 'a>;
    let mut kinds: Vec<(&str, Pick<'_>)> = vec![
        ("/", Box::new(|_| "/".to_owned())),
        (
            "/?q=WORD",
            Box::new(|rng| format!("/?q={}", vocab.sample(rng))),
        ),
        (
            "/?tag=TAG",
            Box::new(|rng| tags[rng.below(tags.len())].clone()),
        ),
        (
            "/packages/NAME",
            Box::new(|rng| names[rng.below(names.len())].clone()),
        ),
        ("/network", Box::new(|_| "/network".to_owned())),
    ];
    if let Some(p) = publishers.first().cloned() {
        kinds.push(("/publishers/KEY", Box::new(move |_| p.clone())));
    }
    let mut pages = Vec::new();
    for (kind, pick) in kinds.iter_mut() {
        // Warm the index reader and the page cache first, as a node in use has them.
        for _ in 0..5 {
            get(&addr, &pick(&mut rng))?;
        }
        let (mut render, mut trip, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let path = pick(&mut rng);
            let t = Instant::now();
            let a = get(&addr, &path)?;
            trip.push(t.elapsed());
            if a.status != 200 {
                bail!("{path}: status {}: {}", a.status, a.body);
            }
            render.push(
                a.render
                    .with_context(|| format!("{path}: no Server-Timing"))?,
            );
            sizes.push(a.body.len());
        }
        sizes.sort_unstable();
        let figures = PageFigures {
            page: (*kind).to_owned(),
            render: summarize(&render),
            round_trip: summarize(&trip),
            bytes_min: sizes.first().copied().unwrap_or(0),
            bytes_p50: sizes.get(sizes.len() / 2).copied().unwrap_or(0),
            bytes_max: sizes.last().copied().unwrap_or(0),
        };
        eprintln!(
            "  {kind:<16} render p50 {:.2} ms p99 {:.2} ms; round trip p50 {:.2} ms; {} bytes (p50)",
            figures.render.p50_ms,
            figures.render.p99_ms,
            figures.round_trip.p50_ms,
            figures.bytes_p50
        );
        pages.push(figures);
    }
    drop(net);
    let report = Report {
        packages,
        rounds,
        pages,
    };
    print(&report);
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(report)
}

/// The table on stdout.
pub fn print(r: &Report) {
    println!(
        "\nweb pages, {} packages, {} fetches each (ms; bytes)",
        r.packages, r.rounds
    );
    println!(
        "{:<16} {:>22} {:>22} {:>10} {:>10}",
        "page", "render min/p50/p99", "round trip p50/p99", "bytes p50", "bytes max"
    );
    for p in &r.pages {
        println!(
            "{:<16} {:>22} {:>22} {:>10} {:>10}",
            p.page,
            format!(
                "{:.2}/{:.2}/{:.2}",
                p.render.min_ms, p.render.p50_ms, p.render.p99_ms
            ),
            format!("{:.2}/{:.2}", p.round_trip.p50_ms, p.round_trip.p99_ms),
            p.bytes_p50,
            p.bytes_max
        );
    }
}
