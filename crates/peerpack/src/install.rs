//! `peerpack install`: asks the node to install, shows progress on a terminal, writes the
//! lock file.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use peerpack_api::{Client, InstallProgress, InstallRequest, LOCK_FILE as FILE_NAME};

use crate::client;
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
    let request = InstallRequest {
        packages,
        to,
        lock: lock.clone(),
        locked,
        owner,
        force,
    };
    let show_progress = !json && std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut drew = false;
    let result = client
        .install_with_progress(&request, |p| {
            if show_progress {
                draw(p, started);
                drew = true;
            }
        })
        .await;
    if drew {
        // Clear the progress line.
        eprint!("\r\x1b[2K");
    }
    let report = result?;
    // The lock file is replaced atomically: a crash leaves the old one or the new one.
    if !locked || lock.as_deref() != Some(report.lock.as_str()) {
        peerpack_core::fs::atomic_write(&lock_path, report.lock.as_bytes())
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

fn draw(p: &InstallProgress, started: Instant) {
    let (done, total) = (p.bytes_done, p.bytes_total);
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
        p.sources,
        p.packages_done,
        p.packages,
        p.current.as_deref().unwrap_or("")
    );
    let _ = std::io::stderr().flush();
}
