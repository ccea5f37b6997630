//! `peerpack-bench warm-install`: installing what the node already holds, in each way of
//! `install.link`, beside a cold install, all through the CLI.
//!
//! Starts five `peerpack node` processes on 127.0.0.1: a provider, and one installer for each
//! of `extract` (no unpacked cache: the archive is unpacked on every install, as before),
//! `auto` (clone where the file system can, else copy), `copy` and `hardlink`. The provider
//! publishes a large pack (many files adding up to `--size-mib`) and a small one (a template of
//! a few KiB). For each installer and each pack:
//! - **cold**: `peerpack install NAME` in a fresh project when the node holds nothing of it
//!   (downloaded from the provider, checked, unpacked). The project is then deleted and `gc`
//!   (quota 0) drops the archive and its unpacked tree;
//! - **warm**: after one more cold install, and once the node has kept the archive unpacked,
//!   `peerpack install NAME` in a fresh project, again and again.
//!
//! Every figure is a whole `peerpack` process, from spawn to exit. `--work-dir` puts the nodes'
//! data and the projects on a file system of choice (an XFS or Btrfs mount shows clones).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::corpus::Rng;
use crate::procnet::{ProcNet, run_timed as run};
use crate::stats::{Summary, summarize};

/// The modes measured, in installer order (node 1, 2, ...).
const MODES: [&str; 4] = ["extract", "auto", "copy", "hardlink"];

/// One installer and one pack.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `install.link` of the installer.
    pub mode: String,
    /// Which pack: `large` or `small`.
    pub pack: String,
    /// Bytes of files in the pack.
    pub pack_bytes: u64,
    /// Files in the pack.
    pub pack_files: usize,
    /// Installs when the node held nothing of it.
    pub cold: Summary,
    /// Installs when the node held it (and, but for `extract`, kept it unpacked).
    pub warm: Summary,
    /// How the warm installs placed the files, as `install --json` reports it.
    pub placed: String,
    /// Median cold over median warm.
    pub speedup: f64,
}

/// The whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The rows.
    pub rows: Vec<Row>,
    /// The file system the work directory is on (from /proc/mounts).
    pub filesystem: String,
}

/// Write a pack of `files` files adding up to about `bytes` (incompressible), in a few
/// directories, with a manifest naming it `name`.
fn pack(dir: &Path, name: &str, bytes: u64, files: usize, seed: u64) -> Result<u64> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("peerpack.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"warm install benchmark pack\"\nlicense = \"MIT\"\nauthors = [\"bench\"]\n"
        ),
    )?;
    let mut rng = Rng::new(seed);
    let each = (bytes / files as u64).max(1);
    let mut total = 0;
    for f in 0..files {
        let sub = dir.join(format!("template/part-{}", f % 4));
        std::fs::create_dir_all(&sub)?;
        let mut data = Vec::with_capacity(each as usize);
        while (data.len() as u64) < each {
            data.extend_from_slice(&rng.next_u64().to_le_bytes());
        }
        data.truncate(each as usize);
        total += data.len() as u64;
        std::fs::write(sub.join(format!("file-{f}.txt")), data)?;
    }
    Ok(total)
}

/// Wait until node `at` knows `name`.
fn knows(net: &ProcNet, at: usize, work: &Path, name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = net.cli(at, work).args(["info", name, "--json"]).output()?;
        if out.status.success() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "node {at} did not learn {name} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until the node of `dir` keeps every archive it holds unpacked (their indexes exist).
fn unpacked(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let blobs = dir.join("blobs");
    loop {
        let held: Vec<String> = std::fs::read_dir(&blobs)?
            .flatten()
            .filter(|e| e.file_name().len() == 2)
            .flat_map(|shard| {
                std::fs::read_dir(shard.path())
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .map(|f| f.file_name().to_string_lossy().into_owned())
            .filter(|n| n.len() == 64)
            .collect();
        if held
            .iter()
            .all(|hex| blobs.join(format!("unpacked/{hex}.index")).is_file())
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the node did not keep its archives unpacked within 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The file system type holding `path`, from /proc/mounts (the longest mount point above it).
fn filesystem(path: &Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, point, kind) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(point)
                .then(|| (point.len(), kind.to_owned()))
        })
        .max()
        .map_or_else(|| "unknown".to_owned(), |(_, k)| k)
}

/// Run the benchmark.
pub fn run_bench(
    size_mib: u64,
    rounds: usize,
    small_rounds: usize,
    bin: Option<PathBuf>,
    work_dir: Option<PathBuf>,
    json: Option<&Path>,
) -> Result<Report> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful figures");
    }
    let bin = crate::restart::peerpack_bin(bin)?;
    let tmp = match &work_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            tempfile::tempdir_in(d)?
        }
        None => tempfile::tempdir()?,
    };
    let work = tmp.path();
    let fs_kind = filesystem(work);
    let mut configs = Vec::new();
    for mode in MODES {
        let path = work.join(format!("{mode}.toml"));
        std::fs::write(
            &path,
            format!("[install]\nlink = \"{mode}\"\n\n[cache]\nquota = 0\n"),
        )?;
        configs.push(path);
    }
    let mut rng = Rng::new(0x3a11);
    eprintln!(
        "starting {} node processes on {fs_kind}...",
        MODES.len() + 1
    );
    let net = ProcNet::start(&bin, work, MODES.len() + 1, &mut rng, |i| {
        if i == 0 {
            Vec::new()
        } else {
            vec!["--config".into(), configs[i - 1].display().to_string()]
        }
    })?;
    let large_bytes = pack(&work.join("src-large"), "warm-large", size_mib << 20, 64, 1)?;
    let small_bytes = pack(&work.join("src-small"), "warm-small", 4096, 12, 2)?;
    for name in ["large", "small"] {
        run(
            {
                let mut c = net.cli(0, work);
                c.arg("publish").arg(work.join(format!("src-{name}")));
                c
            },
            "publish",
        )?;
    }
    let mut rows = Vec::new();
    for (i, mode) in MODES.iter().enumerate() {
        let at = i + 1;
        for (pack, name, bytes, files, n) in [
            ("large", "warm-large", large_bytes, 64, rounds),
            ("small", "warm-small", small_bytes, 12, small_rounds),
        ] {
            knows(&net, at, work, name)?;
            let mut project = 0;
            let mut install = |net: &ProcNet| -> Result<(String, Duration)> {
                project += 1;
                let cwd = work.join(format!("project-{mode}-{pack}-{project}"));
                std::fs::create_dir_all(&cwd)?;
                let mut cmd = net.cli(at, &cwd);
                cmd.args(["--json", "install", name]);
                let out = run(cmd, &format!("install {name} on the {mode} node"))?;
                anyhow::ensure!(
                    cwd.join("peerpack_packages")
                        .join(name)
                        .join("peerpack.toml")
                        .exists(),
                    "install {name} placed no tree"
                );
                Ok(out)
            };
            let forget = |net: &ProcNet| -> Result<()> {
                for e in std::fs::read_dir(work)?.flatten() {
                    if e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("project-{mode}-{pack}-"))
                    {
                        std::fs::remove_dir_all(e.path())?;
                    }
                }
                let mut cmd = net.cli(at, work);
                cmd.arg("gc");
                run(cmd, "gc")?;
                Ok(())
            };
            let mut cold = Vec::with_capacity(n);
            for _ in 0..n {
                let (_, took) = install(&net)?;
                cold.push(took);
                // Let the unpacking that follows an install finish before gc, as it would
                // between two commands of a user.
                if *mode != "extract" {
                    unpacked(&net.nodes[at].dir)?;
                }
                forget(&net)?;
            }
            install(&net)?;
            if *mode != "extract" {
                unpacked(&net.nodes[at].dir)?;
            }
            let mut warm = Vec::with_capacity(n);
            let mut placed = String::new();
            for _ in 0..n {
                let (out, took) = install(&net)?;
                warm.push(took);
                let v: serde_json::Value = serde_json::from_str(&out)
                    .with_context(|| format!("install --json printed {out}"))?;
                placed = v["installed"][0]["placed"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned();
            }
            forget(&net)?;
            let (cold, warm) = (summarize(&cold), summarize(&warm));
            rows.push(Row {
                mode: (*mode).to_owned(),
                pack: pack.to_owned(),
                pack_bytes: bytes,
                pack_files: files,
                speedup: cold.p50_ms / warm.p50_ms,
                cold,
                warm,
                placed,
            });
        }
    }
    drop(net);
    println!("\nfile system: {fs_kind}");
    println!(
        "{:<9} {:<6} {:>10} {:>14} {:>14} {:>14} {:>9}  placed",
        "link", "pack", "bytes", "cold p50 ms", "warm p50 ms", "warm p99 ms", "speedup"
    );
    for r in &rows {
        println!(
            "{:<9} {:<6} {:>10} {:>14.2} {:>14.2} {:>14.2} {:>8.1}×  {}",
            r.mode,
            r.pack,
            r.pack_bytes,
            r.cold.p50_ms,
            r.warm.p50_ms,
            r.warm.p99_ms,
            r.speedup,
            r.placed
        );
    }
    let report = Report {
        rows,
        filesystem: fs_kind,
    };
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(report)
}
