//! The `peerpack` command-line tool.
//!
//! Exit codes: 0 on success, 1 when the command failed (the reason is printed on stderr as
//! one line starting with `error:`), 2 for invalid usage.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use peerpack_core::PublisherKey;
use peerpack_core::archive;
use peerpack_node::DataDir;

/// peerpack: a peer-to-peer marketplace for code-generator template packs.
///
/// Packages are directories with a `peerpack.toml` manifest, packed into deterministic
/// archives addressed by their BLAKE3 hash and signed by the publisher's ed25519 key.
#[derive(Debug, Parser)]
#[command(
    name = "peerpack",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// Directory holding the node's state: publisher key, database, search index and
    /// archives [default: the platform data directory, e.g. ~/.local/share/peerpack]
    #[arg(long, global = true, env = "PEERPACK_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the publisher's ed25519 signing key in the data directory.
    ///
    /// The key signs every package you publish; the first key to publish a name owns it.
    /// The file is written with mode 0600. An existing key is never replaced unless --force
    /// is given.
    Keygen {
        /// Replace an existing key. The old key is lost, and with it the ownership of every
        /// name it published.
        #[arg(long)]
        force: bool,
    },
    /// Validate a package directory and write its deterministic archive.
    ///
    /// Reads DIR/peerpack.toml, checks it, and writes a tar + zstd archive whose bytes depend
    /// only on the files' paths, contents and executable bits (not on mtimes, owners or the
    /// order files were created in). Prints the content id (blake3:<hex>) and size.
    Pack {
        /// The package directory (it must contain peerpack.toml).
        dir: PathBuf,
        /// Where to write the archive [default: ./NAME-VERSION.tar.zst].
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Keygen { force } => keygen(&data_dir(cli.data_dir.as_deref())?, force),
        Command::Pack { dir, out, json } => pack(&dir, out.as_deref(), json),
    }
}

fn data_dir(explicit: Option<&Path>) -> Result<DataDir> {
    Ok(DataDir::resolve(explicit)?)
}

fn keygen(data_dir: &DataDir, force: bool) -> Result<()> {
    let path = data_dir.publisher_key();
    let key = PublisherKey::generate()?;
    key.save(&path, force)?;
    println!("created publisher key {}", key.public());
    println!("  saved to {} (mode 0600)", path.display());
    Ok(())
}

fn pack(dir: &Path, out: Option<&Path>, json: bool) -> Result<()> {
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
