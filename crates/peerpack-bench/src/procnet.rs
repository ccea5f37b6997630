//! Networks of real `peerpack node` processes on 127.0.0.1, driven through the `peerpack` CLI
//! as a user drives them (`churn`, `cli`).
//!
//! Each node listens on a port chosen at its first start and kept across restarts, so a node
//! killed and started again comes back at the address its peers know. Its stderr goes to
//! `WORK/log-I.txt`, whose tail is shown when it fails to start.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::corpus::Rng;

/// How long a node may take to write `node.json`.
const READY: Duration = Duration::from_secs(120);

/// One node process.
pub struct Proc {
    /// Its data directory.
    pub dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// Its listen address, fixed after the first start: `/ip4/127.0.0.1/tcp/PORT`.
    listen: String,
    /// Its address with `/p2p/<id>`, for other nodes' `--bootstrap`.
    pub addr: String,
    bootstrap: Vec<String>,
    extra: Vec<String>,
}

/// Nodes started from one `peerpack` binary.
pub struct ProcNet {
    bin: PathBuf,
    /// The nodes, in start order.
    pub nodes: Vec<Proc>,
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

impl ProcNet {
    /// Start `n` nodes with data directories under `work`, one after the other, each
    /// bootstrapping to node 0 and to a random earlier node, as `peerpack demo` does.
    /// `extra(i)` gives node i's further `peerpack node` flags.
    pub fn start(
        bin: &Path,
        work: &Path,
        n: usize,
        rng: &mut Rng,
        extra: impl Fn(usize) -> Vec<String>,
    ) -> Result<Self> {
        let mut net = Self {
            bin: bin.to_owned(),
            nodes: Vec::with_capacity(n),
        };
        for i in 0..n {
            let mut bootstrap = Vec::new();
            if i > 0 {
                bootstrap.push(net.nodes[0].addr.clone());
                if i > 1 {
                    bootstrap.push(net.nodes[1 + rng.below(i - 1)].addr.clone());
                }
            }
            net.nodes.push(Proc {
                dir: work.join(format!("node-{i}")),
                log: work.join(format!("log-{i}.txt")),
                child: None,
                listen: "/ip4/127.0.0.1/tcp/0".into(),
                addr: String::new(),
                bootstrap,
                extra: extra(i),
            });
            net.up(i)?;
        }
        Ok(net)
    }

    /// Start node `i` (again) and wait until it has written `node.json`; answers how long
    /// that took.
    pub fn up(&mut self, i: usize) -> Result<Duration> {
        let t = Instant::now();
        let node = &mut self.nodes[i];
        anyhow::ensure!(node.child.is_none(), "node {i} is already up");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("node")
            .arg("--data-dir")
            .arg(&node.dir)
            .args(["--listen", &node.listen])
            .args(&node.extra)
            .env_remove("PEERPACK_DATA_DIR")
            .env_remove("PEERPACK_API")
            .stdout(Stdio::null())
            .stderr(log);
        for b in &node.bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        let pid = child.id();
        let info = loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "node {i} exited with {status} at start:\n{}",
                    tail(&node.log)
                );
            }
            // A node killed earlier left its node.json: wait for this process's own.
            let info = std::fs::read(node.dir.join("node.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .filter(|v| v["pid"].as_u64() == Some(u64::from(pid)));
            if let Some(info) = info {
                break info;
            }
            if t.elapsed() > READY {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "node {i} wrote no node.json within {READY:?}:\n{}",
                    tail(&node.log)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let addr = info["listen_addrs"][0]
            .as_str()
            .context("node.json names no listen address")?
            .to_owned();
        node.listen = addr.split("/p2p/").next().unwrap_or(&addr).to_owned();
        node.addr = addr;
        node.child = Some(child);
        Ok(t.elapsed())
    }

    /// Kill node `i` with SIGKILL, as a crash or a power cut would, and reap it.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        if let Some(mut child) = self.nodes[i].child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// A `peerpack` command against node `i` (`--data-dir` set), run in `cwd`.
    pub fn cli(&self, i: usize, cwd: &Path) -> Command {
        command(&self.bin, &self.nodes[i].dir, cwd)
    }
}

/// Run `cmd` to its end; fails naming its stderr when it fails. Answers its stdout and how
/// long it took, from spawn to exit.
pub fn run_timed(mut cmd: Command, what: &str) -> Result<(String, Duration)> {
    let t = Instant::now();
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    let took = t.elapsed();
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok((String::from_utf8_lossy(&out.stdout).into_owned(), took))
}

/// A `peerpack` command (`bin`) against the node of data directory `dir`, run in `cwd`.
pub fn command(bin: &Path, dir: &Path, cwd: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--data-dir")
        .arg(dir)
        .current_dir(cwd)
        .env_remove("PEERPACK_DATA_DIR")
        .env_remove("PEERPACK_API")
        .stdin(Stdio::null());
    cmd
}

impl Drop for ProcNet {
    /// SIGTERM every node, then wait for each (SIGKILL after 30 s).
    fn drop(&mut self) {
        for node in &self.nodes {
            if let Some(child) = &node.child {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                while matches!(child.try_wait(), Ok(None)) {
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}
