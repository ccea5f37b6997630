//! Files among those that ship that look like secrets: private keys and credential files, by
//! name or by content. A published version can never change, so a secret in one stays public
//! for good; `publish` refuses such a package unless told the files are meant to ship.

use std::io::Read;
use std::path::Path;

use super::PackError;
use super::pack::{Listed, ListedKind, list};

/// File names that hold credentials.
const SECRET_NAMES: &[&str] = &[
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    ".npmrc",
    ".pypirc",
    ".netrc",
    ".git-credentials",
    ".htpasswd",
    "credentials",
    "credentials.json",
    "publisher.key",
    "node.key",
    "api-token",
];

/// File name endings of key and certificate stores.
const SECRET_EXTENSIONS: &[&str] = &[".pem", ".key", ".p12", ".pfx", ".jks", ".keystore"];

/// Only the start of a file is read for key material.
const SCAN_BYTES: u64 = 64 * 1024;

/// A file that looks like a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspect {
    /// Its path inside the package.
    pub path: String,
    /// Why it looks like one.
    pub why: &'static str,
}

/// The files of `dir` that would ship and look like secrets, in archive order.
pub fn suspects(dir: &Path) -> Result<Vec<Suspect>, PackError> {
    let mut out = Vec::new();
    for Listed { path, kind, .. } in list(dir)? {
        if kind != ListedKind::File {
            continue;
        }
        let name = path.rsplit('/').next().unwrap_or(&path);
        let why = if SECRET_NAMES.contains(&name) {
            Some("a credentials file name")
        } else if SECRET_EXTENSIONS.iter().any(|ext| name.ends_with(ext)) {
            Some("a key or certificate store file name")
        } else {
            key_material(&dir.join(&path)).map_err(|source| PackError::Io {
                path: dir.join(&path),
                source,
            })?
        };
        if let Some(why) = why {
            out.push(Suspect { path, why });
        }
    }
    Ok(out)
}

/// Why the start of the file at `path` looks like key material, if it does.
fn key_material(path: &Path) -> std::io::Result<Option<&'static str>> {
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(SCAN_BYTES)
        .read_to_end(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    Ok(if text.contains("PRIVATE KEY-----") {
        Some("holds a PRIVATE KEY block")
    } else if text.starts_with("peerpack-publisher-key-v1") {
        Some("is a peerpack publisher key")
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_credentials_are_found_by_name_and_content() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("peerpack.toml"),
            "[package]\nname = \"p\"\nversion = \"1.0.0\"\ndescription = \"d\"\nlicense = \"MIT\"\nauthors = [\"a\"]\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.join("template/certs")).unwrap();
        std::fs::write(d.join("template/certs/server.pem"), "dummy").unwrap();
        std::fs::write(d.join("id_ed25519"), "x").unwrap();
        std::fs::write(d.join("id_ed25519.pub"), "ssh-ed25519 AAAA").unwrap();
        std::fs::write(
            d.join("template/config.txt"),
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n",
        )
        .unwrap();
        std::fs::write(d.join("notes.md"), "keys go in the vault\n").unwrap();
        // Left out by default: never a suspect.
        std::fs::write(d.join(".env"), "TOKEN=x\n").unwrap();
        let found = suspects(d).unwrap();
        let paths: Vec<&str> = found.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "id_ed25519",
                "template/certs/server.pem",
                "template/config.txt"
            ]
        );
        assert_eq!(found[2].why, "holds a PRIVATE KEY block");
    }
}
