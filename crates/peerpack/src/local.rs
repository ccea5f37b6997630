//! The commands that need no node: `keygen` and `pack`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use peerpack_api::DataDir;
use peerpack_core::PublisherKey;
use peerpack_core::archive;

pub fn keygen(data_dir: &DataDir, force: bool) -> Result<()> {
    let path = data_dir.publisher_key();
    let key = PublisherKey::generate()?;
    key.save(&path, force)?;
    println!("created publisher key {}", key.public());
    println!("  saved to {} (mode 0600)", path.display());
    Ok(())
}

pub fn pack(dir: &Path, out: Option<&Path>, json: bool) -> Result<()> {
    // Validate first, so a bad manifest never leaves a file behind.
    let manifest = peerpack_core::Manifest::from_dir(dir)?;
    let out = match out {
        Some(p) => p.to_owned(),
        None => PathBuf::from(format!("{}-{}.tar.zst", manifest.name, manifest.version)),
    };
    // Packed in memory and written once whole: no file of ours is in the directory while it
    // is read, so the archive is the one `publish` computes.
    let (bytes, summary) = archive::pack(dir)?;
    peerpack_core::fs::atomic_write(&out, &bytes)
        .with_context(|| format!("cannot write {}", out.display()))?;
    warn_if_shipped(dir, &out);
    if json {
        let value = serde_json::json!({
            "name": summary.manifest.name,
            "version": summary.manifest.version.to_string(),
            "content_id": summary.content_id.to_string(),
            "size": summary.size,
            "entries": summary.entries,
            "unpacked_size": summary.unpacked_size,
            "path": out,
        });
        println!("{value}");
    } else {
        println!(
            "packed {} {}",
            summary.manifest.name, summary.manifest.version
        );
        println!("  content id  {}", summary.content_id);
        println!(
            "  size        {} bytes ({} entries, {} bytes unpacked)",
            summary.size, summary.entries, summary.unpacked_size
        );
        println!("  archive     {}", out.display());
    }
    Ok(())
}

/// Warn when `out` lies inside the package where the next pack would take it in.
fn warn_if_shipped(dir: &Path, out: &Path) {
    let (Ok(dir), Ok(out)) = (std::path::absolute(dir), std::path::absolute(out)) else {
        return;
    };
    let Ok(rel) = out.strip_prefix(&dir) else {
        return;
    };
    let Some(rel) = rel.to_str() else {
        return;
    };
    let rel = rel.replace(std::path::MAIN_SEPARATOR, "/");
    if archive::Selection::for_dir(&dir).is_ok_and(|s| s.ships(&rel, false)) {
        eprintln!(
            "warning: {} is inside the package and not ignored, so the next pack or publish would include it; write it elsewhere, or add it to {}",
            out.display(),
            archive::IGNORE_FILE
        );
    }
}

/// `pack --list`: what would ship, without writing anything.
pub fn list(dir: &Path, json: bool) -> Result<()> {
    let entries = archive::list(dir)?;
    if json {
        let value: Vec<_> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "path": e.path,
                    "kind": match e.kind {
                        archive::ListedKind::Dir => "dir",
                        archive::ListedKind::File => "file",
                        archive::ListedKind::Symlink => "symlink",
                    },
                    "size": e.size,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(value));
        return Ok(());
    }
    let mut files = 0u64;
    let mut bytes = 0u64;
    for e in &entries {
        match e.kind {
            archive::ListedKind::Dir => println!("{}/", e.path),
            archive::ListedKind::Symlink => println!("{} (symlink)", e.path),
            archive::ListedKind::File => {
                files += 1;
                bytes += e.size;
                println!("{}  {}", e.path, crate::output::bytes(e.size));
            }
        }
    }
    println!(
        "{files} file(s), {} unpacked; left out: {} and what {} names",
        crate::output::bytes(bytes),
        archive::DEFAULT_IGNORES.join(" "),
        archive::IGNORE_FILE
    );
    Ok(())
}
