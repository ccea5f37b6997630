//! `peerpack-bench cli`: what a user waits for at the command line, in a network of node
//! processes.
//!
//! 1. Node 0's data directory is filled with N signed package records (the search benchmark's
//!    generator) before it starts, so that it searches a catalogue of N packages.
//! 2. M `peerpack node` processes start on 127.0.0.1 (`procnet`). The others run without
//!    catalogue sync (`--no-catalogue-sync`), so that they do not each pull node 0's N records;
//!    they learn new packages from gossip as every node does.
//! 3. Timed, each a whole `peerpack` process from spawn to exit, its output read:
//!    - `peerpack --version`: the floor, a process that talks to no node;
//!    - `peerpack status`: one API round trip;
//!    - `peerpack search WORD` on node 0, with words drawn from the generator's vocabulary
//!      (Zipf: mostly common words, some rare ones);
//!    - `peerpack publish DIR` of a small pack from a random node other than 0: a new name, then
//!      a new version of it, alternately;
//!    - `peerpack install NAME` of each new pack on another random node, in a fresh directory,
//!      once that node knows the pack: a cold install, the archive fetched from the publisher.
//!
//!    All 20 processes share this machine's cores, so each publish and install waits until
//!    the network has taken the change before it starts, and half a second more: the work of
//!    19 peers receiving a publish would otherwise land on the next command's clock.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;

use crate::corpus::{Rng, Vocabulary};
use crate::procnet::ProcNet;
use crate::stats::{Summary, summarize};

/// Figures of a run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Node processes.
    pub nodes: usize,
    /// Packages in node 0's catalogue.
    pub packages: usize,
    /// `peerpack --version`.
    pub version: Summary,
    /// `peerpack status`.
    pub status: Summary,
    /// `peerpack search WORD` on node 0.
    pub search: Summary,
    /// `peerpack publish` of a new name.
    pub publish_new_name: Summary,
    /// `peerpack publish` of a new version of a name the node publishes.
    pub publish_new_version: Summary,
    /// `peerpack install NAME` of a small pack the node does not hold.
    pub install: Summary,
    /// Bytes of data in each published pack.
    pub pack_bytes: u64,
}

/// A pause after the network has seen a change, before the next timed command. Here every
/// node shares the machine's cores: the work of 19 peers taking a publish would otherwise land
/// on the next command's clock, where separate machines would not.
const QUIET: Duration = Duration::from_millis(500);

/// Wait until node `at` knows `name` at `version`, then for [`QUIET`].
fn quiet(net: &ProcNet, at: usize, work: &Path, name: &str, version: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = net.cli(at, work).args(["info", name, "--json"]).output()?;
        if out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains(&format!("\"{version}\""))
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "node {at} did not learn {name} {version} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(QUIET);
    Ok(())
}

/// Run `cmd` and time it; fails naming its stderr when it fails.
fn timed(cmd: Command, what: &str) -> Result<Duration> {
    crate::procnet::run_timed(cmd, what).map(|(_, took)| took)
}

/// Run the benchmark.
pub fn run(
    nodes: usize,
    packages: usize,
    rounds: usize,
    bin: Option<PathBuf>,
    json: Option<&Path>,
) -> Result<Report> {
    if nodes < 3 {
        bail!("the cli benchmark needs at least 3 nodes");
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful figures");
    }
    let bin = crate::restart::peerpack_bin(bin)?;
    let tmp = tempfile::tempdir()?;
    let work = tmp.path();
    if packages > 0 {
        crate::restart::fill(&work.join("node-0"), packages, 1)?;
    }
    let mut rng = Rng::new(0xc11 ^ nodes as u64);
    eprintln!("starting {nodes} node processes...");
    let net = ProcNet::start(&bin, work, nodes, &mut rng, |i| {
        if i == 0 {
            Vec::new()
        } else {
            vec!["--no-catalogue-sync".into()]
        }
    })?;
    // Let the first connections and syncs pass.
    std::thread::sleep(Duration::from_secs(3));

    let mut version = Vec::with_capacity(rounds);
    let mut status = Vec::with_capacity(rounds);
    let mut search = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let mut cmd = Command::new(&bin);
        cmd.arg("--version");
        version.push(timed(cmd, "peerpack --version")?);
        let mut cmd = net.cli(rng.below(nodes), work);
        cmd.arg("status");
        status.push(timed(cmd, "peerpack status")?);
    }
    let vocab = Vocabulary::new();
    // Warm the node's index reader and the page cache, as a node in use has them.
    for _ in 0..20 {
        let mut cmd = net.cli(0, work);
        cmd.args(["search", vocab.sample(&mut rng)]);
        timed(cmd, "peerpack search")?;
    }
    for _ in 0..rounds {
        let mut cmd = net.cli(0, work);
        cmd.args(["search", vocab.sample(&mut rng)]);
        search.push(timed(cmd, "peerpack search")?);
    }

    let pack_bytes = 2048;
    let mut new_names = Vec::new();
    let mut new_versions = Vec::new();
    let mut installs = Vec::new();
    for r in 0..rounds {
        let from = 1 + rng.below(nodes - 1);
        let mut at = 1 + rng.below(nodes - 1);
        if at == from {
            at = 1 + at % (nodes - 1);
        }
        let name = format!("cli-pack-{r}");
        let dir = work.join(format!("src-{r}"));
        crate::propagation::tagged_package(&dir, &name, "1.0.0", "clibench", pack_bytes)?;
        let mut cmd = net.cli(from, work);
        cmd.arg("publish").arg(&dir);
        new_names.push(timed(cmd, &format!("publish {name}"))?);
        quiet(&net, at, work, &name, "1.0.0")?;
        std::fs::write(
            dir.join("peerpack.toml"),
            std::fs::read_to_string(dir.join("peerpack.toml"))?
                .replace("version = \"1.0.0\"", "version = \"1.0.1\""),
        )?;
        let mut cmd = net.cli(from, work);
        cmd.arg("publish").arg(&dir);
        new_versions.push(timed(cmd, &format!("publish {name} 1.0.1"))?);
        quiet(&net, at, work, &name, "1.0.1")?;
        let cwd = work.join(format!("install-{r}"));
        std::fs::create_dir_all(&cwd)?;
        let mut cmd = net.cli(at, &cwd);
        cmd.args(["install", &name]);
        installs.push(timed(cmd, &format!("install {name} on node {at}"))?);
        anyhow::ensure!(
            cwd.join("peerpack_packages")
                .join(&name)
                .join("peerpack.toml")
                .exists(),
            "install {name} placed no tree"
        );
        std::thread::sleep(QUIET);
    }
    drop(net);
    let report = Report {
        nodes,
        packages,
        version: summarize(&version),
        status: summarize(&status),
        search: summarize(&search),
        publish_new_name: summarize(&new_names),
        publish_new_version: summarize(&new_versions),
        install: summarize(&installs),
        pack_bytes,
    };
    println!(
        "\n{:<34} {:>10} {:>10} {:>10} {:>8}",
        "command (whole process)", "min ms", "p50 ms", "p99 ms", "runs"
    );
    for (what, s) in [
        ("peerpack --version".to_owned(), &report.version),
        ("peerpack status".to_owned(), &report.status),
        (format!("peerpack search ({packages} pkgs)"), &report.search),
        (
            "peerpack publish (new name)".to_owned(),
            &report.publish_new_name,
        ),
        (
            "peerpack publish (new version)".to_owned(),
            &report.publish_new_version,
        ),
        ("peerpack install (2 KiB, cold)".to_owned(), &report.install),
    ] {
        println!(
            "{:<34} {:>10.2} {:>10.2} {:>10.2} {:>8}",
            what, s.min_ms, s.p50_ms, s.p99_ms, s.count
        );
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(report)
}
