//! The commands that need no node: `keygen` and `pack`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use peerpack_api::DataDir;
use peerpack_core::PublisherKey;
use peerpack_core::archive;

pub fn keygen(data_dir: &DataDir, force: bool, abandon_names: bool) -> Result<()> {
    let path = data_dir.publisher_key();
    let key = PublisherKey::generate()?;
    let kept = make_room(data_dir, force, abandon_names, &key)?;
    key.save(&path, force)?;
    println!("created publisher key {}", key.public());
    println!("  saved to {} (mode 0600)", path.display());
    if let Some(old) = kept {
        println!("  the old key is kept in {}", old.display());
    }
    Ok(())
}

/// Before `new` replaces the data directory's publisher key: refuse while a node runs with it
/// or, unless `abandon_names`, while it owns names; keep a copy of it. Answers where the copy
/// is (none when there was no key). Without `force` an existing key is never replaced.
fn make_room(
    data_dir: &DataDir,
    force: bool,
    abandon_names: bool,
    new: &PublisherKey,
) -> Result<Option<PathBuf>> {
    let path = data_dir.publisher_key();
    let old = match PublisherKey::load(&path) {
        Ok(k) => k,
        Err(peerpack_core::keys::KeyError::NotFound(_)) => return Ok(None),
        Err(e) if force => {
            // An unreadable key can still be replaced on purpose; it is kept all the same.
            eprintln!("warning: replacing an unreadable key: {e}");
            return keep_copy(&path).map(Some);
        }
        Err(e) => return Err(e.into()),
    };
    if old.public() == new.public() {
        return Ok(None);
    }
    if !force {
        return Err(crate::exit::refused(format!(
            "{} already holds the publisher key {}; pass --force to replace it",
            path.display(),
            old.public()
        )));
    }
    if let Some(holder) = peerpack_store::holder(data_dir.root()) {
        return Err(crate::exit::refused(format!(
            "a node ({holder}) runs with {} and signs with the key it loaded; stop it first",
            data_dir.root().display()
        )));
    }
    let names = peerpack_store::names_owned_by(data_dir.root(), &old.public())
        .with_context(|| format!("cannot read the names {} owns", old.public()))?;
    if !names.is_empty() && !abandon_names {
        let shown: Vec<&str> = names.iter().take(10).map(String::as_str).collect();
        return Err(crate::exit::refused(format!(
            "the key {} owns {} name(s) ({}{}); a new key can never publish them. Keep the old key with `peerpack key export FILE`, then pass --abandon-names",
            old.public(),
            names.len(),
            shown.join(", "),
            if names.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        )));
    }
    keep_copy(&path).map(Some)
}

/// Copy the key at `path` to `path.replaced-UNIXTIME` (mode 0600).
fn keep_copy(path: &Path) -> Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".replaced-{stamp}"));
    let copy = PathBuf::from(name);
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    // Never over an earlier copy: each may be the only one of its key.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&copy)
        .with_context(|| format!("cannot keep a copy of the old key in {}", copy.display()))?;
    std::io::Write::write_all(&mut file, &bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| match copy.parent() {
            Some(dir) => peerpack_core::fs::sync_dir(dir),
            None => Ok(()),
        })
        .with_context(|| format!("cannot keep a copy of the old key in {}", copy.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private", copy.display()))?;
    }
    Ok(copy)
}

const EXPORT_WARNING: &str = "warning: this is your publisher SECRET key: anyone who has it can publish, yank and deprecate as you, and nobody can take that back. Keep it offline, never commit it.";

/// `peerpack key export FILE|-`.
pub fn key_export(data_dir: &DataDir, file: &Path) -> Result<()> {
    let path = data_dir.publisher_key();
    let key = PublisherKey::load(&path)?;
    eprintln!("{EXPORT_WARNING}");
    if file == Path::new("-") {
        print!("{}", std::fs::read_to_string(&path)?);
        return Ok(());
    }
    key.save(file, false)?;
    println!(
        "exported publisher key {} to {} (mode 0600)",
        key.public(),
        file.display()
    );
    Ok(())
}

/// `peerpack key import FILE`.
pub fn key_import(data_dir: &DataDir, file: &Path, force: bool, abandon_names: bool) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let key = PublisherKey::from_text(&text, file)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(file)
            && m.permissions().mode() & 0o077 != 0
        {
            eprintln!(
                "warning: {} can be read by other users; it holds a secret key: delete it or `chmod 600` it",
                file.display()
            );
        }
    }
    let kept = make_room(data_dir, force, abandon_names, &key)?;
    key.save(&data_dir.publisher_key(), true)?;
    println!("imported publisher key {}", key.public());
    println!(
        "  saved to {} (mode 0600)",
        data_dir.publisher_key().display()
    );
    if let Some(old) = kept {
        println!("  the old key is kept in {}", old.display());
    }
    Ok(())
}

/// `peerpack whoami`: the publisher key of the data directory.
pub fn whoami(data_dir: &DataDir, json: bool) -> Result<()> {
    let path = data_dir.publisher_key();
    let key = match PublisherKey::load(&path) {
        Ok(k) => k,
        Err(peerpack_core::keys::KeyError::NotFound(_)) => {
            return Err(crate::exit::not_found(format!(
                "no publisher key in {}; `peerpack keygen` creates one (so does `peerpack node` on its first start)",
                data_dir.root().display()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        println!(
            "{}",
            serde_json::json!({ "publisher": key.public().to_string(), "path": path })
        );
    } else {
        println!("{}", key.public());
        println!("  key file {}", path.display());
    }
    Ok(())
}

/// `peerpack init`: a commented manifest that validates, in a new or existing directory.
pub fn init(
    dir: &Path,
    name: Option<String>,
    description: Option<String>,
    license: String,
    author: Option<String>,
) -> Result<()> {
    let manifest = dir.join(peerpack_core::manifest::MANIFEST_FILE);
    if manifest.exists() {
        anyhow::bail!(
            "{} already exists; peerpack init never replaces a manifest",
            manifest.display()
        );
    }
    let name = match name {
        Some(n) => n,
        None => name_from_dir(dir)?,
    };
    peerpack_core::PackageName::new(&name)
        .with_context(|| format!("{name:?} is not a package name; pass --name NAME"))?;
    let description = description.unwrap_or_else(|| format!("{name} template"));
    let author = author
        .or_else(git_author)
        .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "unknown author".to_owned()));
    let text = format!(
        r#"# The manifest of a peerpack package. Every file beside it ships, except .git, .env*,
# node_modules/ and what .peerpackignore (gitignore syntax) leaves out:
# `peerpack pack . --list` shows what ships.
[package]
# [a-z0-9][a-z0-9-]{{0,63}}; the first key to publish it owns it.
name = {name}
# Semver. A published version can never change: publish a new one instead.
version = "0.1.0"
# One line, at most 1000 characters.
description = {description}
# An SPDX expression.
license = {license}
authors = [{author}]
# Optional:
# categories = ["cli"]         # at most 5
# tags = ["rust"]              # at most 20
# homepage = "https://..."
# repository = "https://..."
# readme = "README.md"         # must be a file in the package

[dependencies]
# Packages installed with this one, by semver requirement:
# other-pack = "^1.0"
"#,
        name = toml_string(&name),
        description = toml_string(&description),
        license = toml_string(&license),
        author = toml_string(&author),
    );
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    peerpack_core::fs::atomic_write(&manifest, text.as_bytes())
        .with_context(|| format!("cannot write {}", manifest.display()))?;
    // What we wrote must be a valid manifest; if an option made it invalid, leave nothing.
    if let Err(e) = peerpack_core::Manifest::from_dir(dir) {
        let _ = std::fs::remove_file(&manifest);
        return Err(e.into());
    }
    println!("created {} for {name} 0.1.0", manifest.display());
    println!(
        "  add the template's files, check them with `peerpack pack {} --list`, then `peerpack publish {}`",
        dir.display(),
        dir.display()
    );
    Ok(())
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The package name a directory suggests: its name, lower-cased, other characters as `-`.
fn name_from_dir(dir: &Path) -> Result<String> {
    let abs =
        std::path::absolute(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    let base = abs
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_lowercase();
    let mut name = String::new();
    for c in base.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c);
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    let name: String = name.trim_end_matches('-').chars().take(64).collect();
    if name.is_empty() {
        anyhow::bail!(
            "cannot make a package name from {}; pass --name NAME",
            abs.display()
        );
    }
    Ok(name)
}

/// "Name <email>" from git's configuration, if git knows it.
fn git_author() -> Option<String> {
    let get = |key: &str| {
        let out = std::process::Command::new("git")
            .args(["config", "--get", key])
            .output()
            .ok()?;
        let v = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (out.status.success() && !v.is_empty()).then_some(v)
    };
    let name = get("user.name")?;
    Some(match get("user.email") {
        Some(email) => format!("{name} <{email}>"),
        None => name,
    })
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
            "archive_size": summary.size,
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
