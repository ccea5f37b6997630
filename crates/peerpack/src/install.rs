//! `peerpack install`: asks the node to install, shows progress on a terminal, writes the
//! lock file.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use peerpack_node::install::InstallReport;
use peerpack_node::lockfile::FILE_NAME;

use crate::client::{self, Client};
use crate::output::bytes;

pub async fn run(
    client: &Client,
    packages: Vec<String>,
    to: &Path,
    locked: bool,
    owner: Option<String>,
    force: bool,
    json: bool,
) -> Result<()> {
    let to = client::absolute(to)?;
    let lock_path = std::env::current_dir()
        .context("cannot read the current directory")?
        .join(FILE_NAME);
    let lock = match std::fs::read_to_string(&lock_path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => bail!("cannot read {}: {e}", lock_path.display()),
    };
    let body = serde_json::json!({
        "packages": packages,
        "to": to,
        "lock": lock,
        "locked": locked,
        "owner": owner,
        "force": force,
    });
    let show_progress = !json && std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut result: Option<InstallReport> = None;
    let mut failure: Option<String> = None;
    let mut drew = false;
    client
        .post_lines("/v1/install?progress=ndjson", &body, |line| {
            if let Some(p) = line.get("progress") {
                if show_progress {
                    draw(p, started);
                    drew = true;
                }
            } else if let Some(r) = line.get("result") {
                result =
                    Some(serde_json::from_value(r.clone()).context("unexpected install result")?);
            } else if let Some(e) = line.get("error") {
                failure = Some(e["message"].as_str().unwrap_or("install failed").to_owned());
            }
            Ok(())
        })
        .await?;
    if drew {
        // Clear the progress line.
        eprint!("\r\x1b[2K");
    }
    if let Some(msg) = failure {
        bail!("{msg}");
    }
    let Some(report) = result else {
        bail!("the node ended the install without a result");
    };
    // The lock file is replaced atomically: a crash leaves the old one or the new one.
    if !locked || lock.as_deref() != Some(report.lock.as_str()) {
        let dir = lock_path.parent().unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        std::fs::write(tmp.path(), &report.lock)
            .with_context(|| format!("cannot write {}", lock_path.display()))?;
        tmp.persist(&lock_path)
            .with_context(|| format!("cannot write {}", lock_path.display()))?;
    }
    if json {
        let value = serde_json::json!({
            "installed": report.installed,
            "lock_file": lock_path,
        });
        println!("{value}");
        return Ok(());
    }
    let secs = started.elapsed().as_secs_f64();
    let fetched: u64 = report.installed.iter().map(|i| i.fetched_bytes).sum();
    for i in &report.installed {
        let how = if i.unchanged {
            "unchanged".to_owned()
        } else if i.cached {
            "from the local store".to_owned()
        } else {
            let mut s = format!(
                "{} from {} peer(s)",
                bytes(i.fetched_bytes),
                i.sources.len()
            );
            if i.resumed_bytes > 0 {
                s.push_str(&format!(", {} resumed", bytes(i.resumed_bytes)));
            }
            s
        };
        println!("installed {} {} -> {} ({how})", i.name, i.version, i.path);
    }
    println!(
        "{} package(s) in {secs:.2}s, {} downloaded; wrote {}",
        report.installed.len(),
        bytes(fetched),
        lock_path.display()
    );
    Ok(())
}

fn draw(p: &serde_json::Value, started: Instant) {
    let done = p["bytes_done"].as_u64().unwrap_or(0);
    let total = p["bytes_total"].as_u64().unwrap_or(0);
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let width = 24usize;
    let filled = if total == 0 {
        width
    } else {
        ((done as f64 / total as f64) * width as f64) as usize
    }
    .min(width);
    let bar = format!("{}{}", "#".repeat(filled), "-".repeat(width - filled));
    eprint!(
        "\r\x1b[2K[{bar}] {} / {}  {}/s  {} source(s)  package {}/{} {}",
        bytes(done),
        bytes(total),
        bytes((done as f64 / secs) as u64),
        p["sources"].as_u64().unwrap_or(0),
        p["packages_done"].as_u64().unwrap_or(0),
        p["packages"].as_u64().unwrap_or(0),
        p["current"].as_str().unwrap_or("")
    );
    let _ = std::io::stderr().flush();
}
