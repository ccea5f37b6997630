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
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&parent)
        .with_context(|| format!("cannot create a file in {}", parent.display()))?;
    let summary = archive::pack_to(dir, std::io::BufWriter::new(tmp.as_file_mut()))?;
    tmp.as_file()
        .sync_all()
        .context("cannot flush the archive")?;
    tmp.persist(&out)
        .with_context(|| format!("cannot write {}", out.display()))?;
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
