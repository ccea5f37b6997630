//! `peerpack install`: asks the node to install, shows progress on a terminal, writes the
//! lock file.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use peerpack_api::{
    Change, Client, DEFAULT_INSTALL_DIR, InstallProgress, InstallRequest, LOCK_FILE as FILE_NAME,
    Lockfile, RemoveRequest, VerifyRequest,
};

use crate::output::bytes;

/// The project `peerpack install` runs in: the current directory and its lock file.
pub struct Project {
    dir: PathBuf,
    lock_path: PathBuf,
    text: Option<String>,
    lock: Option<Lockfile>,
}

impl Project {
    /// The current directory's project.
    pub fn here() -> Result<Self> {
        let dir = std::env::current_dir().context("cannot read the current directory")?;
        let lock_path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&lock_path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => bail!("cannot read {}: {e}", lock_path.display()),
        };
        let lock = text
            .as_deref()
            .map(Lockfile::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("{}: {e}", lock_path.display()))?;
        Ok(Self {
            dir,
            lock_path,
            text,
            lock,
        })
    }

    /// The lock, or an error that says there is none here.
    pub fn lock(&self) -> Result<&Lockfile> {
        self.lock.as_ref().ok_or_else(|| {
            crate::exit::not_found(format!(
                "there is no {FILE_NAME} in {}; `peerpack install NAME` creates one",
                self.dir.display()
            ))
        })
    }

    /// The install directory: `flag`, else the lock's, else the default. Returns the absolute
    /// path for the node and the text to record in the lock (relative to the project when it
    /// lies inside it).
    ///
    /// A directory the user did not name on the command line (the lock's, or the default) must
    /// lie inside the project, symlinks resolved: a lock file comes with a repository, and a
    /// hostile one must not make `install` write, or `remove` delete, anywhere else.
    pub fn to(&self, flag: Option<&Path>) -> Result<(PathBuf, String)> {
        let from_lock = self.lock.as_ref().and_then(|l| l.to.clone());
        let chosen = match (flag, &from_lock) {
            (Some(f), _) => f.to_path_buf(),
            (None, Some(t)) => PathBuf::from(t),
            (None, None) => PathBuf::from(DEFAULT_INSTALL_DIR),
        };
        let abs = std::path::absolute(self.dir.join(&chosen)).unwrap_or_else(|_| chosen.clone());
        if flag.is_none() {
            self.check_inside(&chosen, &abs, from_lock.is_some())?;
        }
        let text = abs
            .strip_prefix(&self.dir)
            .ok()
            .filter(|r| !r.as_os_str().is_empty())
            .map_or_else(|| abs.to_string_lossy(), |r| r.to_string_lossy())
            .into_owned();
        Ok((abs, text))
    }

    /// Refuse an install directory outside the project: absolute, climbing with `..`, or
    /// leading out through a symlink.
    fn check_inside(&self, chosen: &Path, abs: &Path, from_lock: bool) -> Result<()> {
        use std::path::Component;
        let climbs = chosen
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
        let project = std::fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone());
        // The deepest part of the path that exists, resolved.
        let mut probe = abs.to_path_buf();
        let resolved = loop {
            if let Ok(r) = std::fs::canonicalize(&probe) {
                break Some(r);
            }
            if !probe.pop() {
                break None;
            }
        };
        let outside = climbs || resolved.is_some_and(|r| !r.starts_with(&project));
        if outside {
            let whose = if from_lock {
                format!("{} names the install directory", self.lock_path.display())
            } else {
                "the default install directory".to_owned()
            };
            return Err(crate::exit::refused(format!(
                "{whose} {}, which is outside this project ({}); if you mean it, pass --to {} yourself",
                chosen.display(),
                self.dir.display(),
                chosen.display()
            )));
        }
        Ok(())
    }

    /// Replace the lock file with `text` (with `to` recorded), atomically: a crash leaves the
    /// old one or the new one. Unchanged text is not rewritten.
    pub fn write(&self, text: &str, to: &str) -> Result<bool> {
        let mut lock = Lockfile::parse(text).map_err(anyhow::Error::msg)?;
        lock.to = Some(to.to_owned());
        let text = lock.to_text();
        if self.text.as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        peerpack_core::fs::atomic_write(&self.lock_path, text.as_bytes())
            .with_context(|| format!("cannot write {}", self.lock_path.display()))?;
        Ok(true)
    }

    /// Where the lock file is.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }
}

/// What `install` and `update` are asked.
pub struct Ask {
    pub packages: Vec<String>,
    pub to: Option<PathBuf>,
    pub locked: bool,
    pub owner: Option<String>,
    pub force: bool,
    pub repair: bool,
    pub update: bool,
    pub dry_run: bool,
}

pub async fn run(client: &Client, ask: Ask, json: bool) -> Result<()> {
    let project = Project::here()?;
    let (to, to_text) = project.to(ask.to.as_deref())?;
    let request = InstallRequest {
        packages: ask.packages,
        to,
        lock: project.text.clone(),
        locked: ask.locked,
        owner: ask.owner,
        force: ask.force,
        update: ask.update,
        dry_run: ask.dry_run,
        repair: ask.repair,
    };
    let show_progress = !json && !ask.dry_run && std::io::stderr().is_terminal();
    let started = Instant::now();
    let drew = AtomicBool::new(false);
    let id = AtomicU64::new(0);
    let install = client.install_with_progress(&request, |p| {
        id.store(p.id, Ordering::Relaxed);
        if show_progress {
            draw(p, started);
            drew.store(true, Ordering::Relaxed);
        }
    });
    tokio::pin!(install);
    // Ctrl-C asks the node to cancel, then waits for its answer: the install stops before it
    // changes the target, or finishes placing the trees it has begun to place (and then the
    // lock is written as usual). A second Ctrl-C leaves without waiting.
    let mut interrupted = false;
    let result = loop {
        tokio::select! {
            r = &mut install => break r,
            _ = tokio::signal::ctrl_c() => {
                if interrupted {
                    return Err(crate::exit::Interrupted.into());
                }
                interrupted = true;
                eprintln!("\ncancelling the install; Ctrl-C again to leave without waiting");
                match id.load(Ordering::Relaxed) {
                    0 => return Err(crate::exit::Interrupted.into()),
                    id => {
                        if let Err(e) = client.cancel_install(id).await {
                            eprintln!("warning: the node did not take the cancel: {e}");
                        }
                    }
                }
            }
        }
    };
    if drew.load(Ordering::Relaxed) {
        // Clear the progress line.
        eprint!("\r\x1b[2K");
    }
    let report = result.map_err(|e| match &e {
        peerpack_api::ClientError::Api { code, .. } if code == "cancelled" => anyhow::Error::new(e)
            .context(format!(
                "cancelled: nothing in {} changed, and {} is as it was",
                request.to.display(),
                project.lock_path().display()
            )),
        _ => e.into(),
    })?;
    if interrupted {
        eprintln!("the node had already begun to place the packages, so it finished");
    }
    // --locked installs what the lock says and leaves the file alone.
    let wrote = !ask.dry_run && !ask.locked && project.write(&report.lock, &to_text)?;
    if json {
        let value = serde_json::json!({
            "installed": report.installed,
            "changes": report.changes,
            "dry_run": ask.dry_run,
            "lock_file": project.lock_path(),
        });
        println!("{value}");
        return Ok(());
    }
    print_changes(&report.changes, ask.dry_run);
    if ask.dry_run {
        if report.changes.is_empty() {
            println!("nothing would change");
        }
        return Ok(());
    }
    let secs = started.elapsed().as_secs_f64();
    let fetched: u64 = report.installed.iter().map(|i| i.fetched_bytes).sum();
    for i in &report.installed {
        let how = if i.repaired {
            "restored: it differed from its archive".to_owned()
        } else if i.unchanged {
            "unchanged".to_owned()
        } else if i.cached {
            match i.placed.as_deref() {
                Some(how) if how != "unpacked" => format!("from the local store, {how}"),
                _ => "from the local store".to_owned(),
            }
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
        if let Some(reason) = &i.yanked {
            eprintln!(
                "warning: {} {} is yanked by its owner{}; the lock keeps it, `peerpack update {}` moves off it",
                i.name,
                i.version,
                crate::output::notice(reason),
                i.name
            );
        }
        if let Some(message) = &i.deprecated {
            eprintln!(
                "warning: {} {} is deprecated by its owner{}",
                i.name,
                i.version,
                crate::output::notice(message)
            );
        }
    }
    println!(
        "{} package(s) in {secs:.2}s, {} downloaded; {} {}",
        report.installed.len(),
        bytes(fetched),
        if wrote { "wrote" } else { "unchanged:" },
        project.lock_path().display()
    );
    Ok(())
}

/// "updated NAME A → B", "added NAME B", "dropped NAME A".
fn print_changes(changes: &[Change], dry_run: bool) {
    let would = if dry_run { "would be " } else { "" };
    for c in changes {
        match (&c.from, &c.to) {
            (Some(a), Some(b)) => println!("{would}updated {} {a} → {b}", c.name),
            (None, Some(b)) => println!("{would}added {} {b}", c.name),
            (Some(a), None) => println!("{would}dropped {} {a} (no longer needed)", c.name),
            (None, None) => {}
        }
    }
}

/// `peerpack outdated`: the update a dry run would make, beside what is locked and latest.
pub async fn outdated(client: &Client, json: bool) -> Result<()> {
    let project = Project::here()?;
    let lock = project.lock()?;
    let (to, _) = project.to(None)?;
    let report = client
        .install(&InstallRequest {
            to,
            lock: project.text.clone(),
            update: true,
            dry_run: true,
            ..InstallRequest::default()
        })
        .await?;
    let wanted = Lockfile::parse(&report.lock).map_err(anyhow::Error::msg)?;
    let mut rows = Vec::new();
    for p in &lock.packages {
        let w = wanted.get(&p.name).map(|w| w.version.clone());
        let latest = report
            .changes
            .iter()
            .find(|c| c.name == p.name)
            .and_then(|c| c.latest.clone());
        let latest = match latest {
            Some(l) => Some(l),
            None => client
                .info(&p.name)
                .await
                .ok()
                .and_then(|i| latest_release(i.versions.iter().map(|v| v.version.as_str()))),
        };
        let behind = w.as_deref() != Some(p.version.as_str())
            || latest.as_deref().is_some_and(|l| l != p.version);
        if behind {
            rows.push(serde_json::json!({
                "name": p.name,
                "current": p.version,
                "wanted": w,
                "latest": latest,
                "root": lock.is_root(&p.name),
            }));
        }
    }
    if json {
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    if rows.is_empty() {
        println!("every locked package is at its latest version");
        return Ok(());
    }
    println!(
        "{:<24} {:<12} {:<12} {:<12}",
        "package", "current", "wanted", "latest"
    );
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    for r in &rows {
        println!(
            "{:<24} {:<12} {:<12} {:<12}",
            s(&r["name"]),
            s(&r["current"]),
            s(&r["wanted"]),
            s(&r["latest"])
        );
    }
    println!("`peerpack update` moves each package to its wanted version");
    Ok(())
}

/// The highest release among `versions`, else the highest pre-release.
fn latest_release<'a>(versions: impl Iterator<Item = &'a str>) -> Option<String> {
    versions
        .filter_map(|v| peerpack_core::Version::parse(v).ok())
        .max_by(|a, b| {
            (a.pre.is_empty(), a)
                .partial_cmp(&(b.pre.is_empty(), b))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .map(|v| v.to_string())
}

/// `peerpack remove NAME...`.
pub async fn remove(client: &Client, packages: Vec<String>, json: bool) -> Result<()> {
    let project = Project::here()?;
    project.lock()?;
    let (to, to_text) = project.to(None)?;
    let report = client
        .remove(&RemoveRequest {
            packages,
            to,
            lock: project.text.clone().unwrap_or_default(),
        })
        .await?;
    project.write(&report.lock, &to_text)?;
    if json {
        println!("{}", serde_json::to_string(&report.removed)?);
        return Ok(());
    }
    for r in &report.removed {
        if r.deleted {
            println!("removed {} {} ({} deleted)", r.name, r.version, r.path);
        } else if std::fs::symlink_metadata(&r.path).is_ok() {
            println!(
                "removed {} {} from the lock; left {} alone: peerpack did not install it there",
                r.name, r.version, r.path
            );
        } else {
            println!("removed {} {} (it was not installed)", r.name, r.version);
        }
    }
    Ok(())
}

/// `peerpack list`: the lock, read locally.
pub fn list(json: bool) -> Result<()> {
    let project = Project::here()?;
    let lock = project.lock()?;
    let (to, _) = project.to(None)?;
    let rows: Vec<serde_json::Value> = lock
        .packages
        .iter()
        .map(|p| {
            let path = to.join(&p.name);
            serde_json::json!({
                "name": p.name,
                "version": p.version,
                "root": lock.is_root(&p.name),
                "path": path,
                "installed": path.is_dir(),
                "content_id": p.content_id,
                "publisher": p.publisher,
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    if rows.is_empty() {
        println!("{} locks no package", project.lock_path().display());
    }
    for (p, r) in lock.packages.iter().zip(&rows) {
        let how = if lock.is_root(&p.name) {
            "".to_owned()
        } else {
            let by: Vec<&str> = lock
                .dependents(&p.name)
                .iter()
                .map(|d| d.name.as_str())
                .collect();
            format!("  (dependency of {})", by.join(", "))
        };
        let missing = if r["installed"] == true {
            ""
        } else {
            "  [not installed: run `peerpack install`]"
        };
        println!("{} {}{how}{missing}", p.name, p.version);
    }
    Ok(())
}

/// `peerpack verify [NAME...]`: exits 1 when a tree drifted.
pub async fn verify(client: &Client, packages: Vec<String>, json: bool) -> Result<()> {
    let project = Project::here()?;
    project.lock()?;
    let (to, _) = project.to(None)?;
    let report = client
        .verify(&VerifyRequest {
            to,
            lock: project.text.clone().unwrap_or_default(),
            packages,
        })
        .await?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        for p in &report.packages {
            match p.state.as_str() {
                "ok" => println!("ok       {} {}", p.name, p.version),
                "missing" => println!(
                    "missing  {} {}: {} does not exist",
                    p.name, p.version, p.path
                ),
                "foreign" => println!(
                    "foreign  {} {}: {} holds something peerpack did not install for this version",
                    p.name, p.version, p.path
                ),
                _ => {
                    println!(
                        "drifted  {} {}: {} change(s)",
                        p.name,
                        p.version,
                        p.drift.len()
                    );
                    for d in &p.drift {
                        println!("           {:<8} {}", d.kind, d.path);
                    }
                }
            }
        }
    }
    if !report.clean() {
        let bad = report.packages.iter().filter(|p| p.state != "ok").count();
        return Err(Drifted(format!(
            "{bad} package(s) differ from the lock; `peerpack install --repair` restores them"
        ))
        .into());
    }
    Ok(())
}

/// `verify` found trees that differ from the lock.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Drifted(pub String);

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
