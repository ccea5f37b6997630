//! The data directory: everything a node keeps lives under one directory. Local clients find
//! a running node through two files in it: `node.json` (its API URL) and `api-token`.
//!
//! ```text
//! DATA_DIR/
//!   publisher.key   the publisher's ed25519 secret key (mode 0600)
//!   node.key        the node's libp2p identity (mode 0600)
//!   node.json       written while a node runs: peer id, addresses, API URL, pid
//!   peerpack.db     SQLite: records, owners, peers
//!   index/          tantivy search index (derived; rebuilt from peerpack.db)
//!   blobs/          content-addressed archives
//! ```
//!
//! Precedence: `--data-dir DIR`, then `PEERPACK_DATA_DIR`, then the platform data directory
//! (`$XDG_DATA_HOME/peerpack`, i.e. `~/.local/share/peerpack` on Linux;
//! `~/Library/Application Support/peerpack` on macOS).

use std::path::{Path, PathBuf};

/// The environment variable that names the data directory.
pub const ENV_VAR: &str = "PEERPACK_DATA_DIR";
/// File name of the publisher key.
pub const PUBLISHER_KEY_FILE: &str = "publisher.key";
/// File name of the node's libp2p key.
pub const NODE_KEY_FILE: &str = "node.key";
/// File name of the running node's description.
pub const RUNTIME_FILE: &str = "node.json";
/// File name of the API token inside a data directory.
pub const API_TOKEN_FILE: &str = "api-token";

/// Errors locating the data directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No home directory to derive the default from.
    #[error(
        "cannot determine a default data directory (no home directory); pass --data-dir DIR or set {ENV_VAR}"
    )]
    NoDefault,
}

/// A node's data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `explicit` when given (from `--data-dir` or the environment, already merged by the
    /// caller), else the platform default.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self, Error> {
        match explicit {
            Some(p) => Ok(Self::new(p)),
            None => Self::platform_default(),
        }
    }

    /// The platform data directory for peerpack.
    pub fn platform_default() -> Result<Self, Error> {
        directories::ProjectDirs::from("", "", "peerpack")
            .map(|d| Self::new(d.data_dir()))
            .ok_or(Error::NoDefault)
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of the publisher key.
    pub fn publisher_key(&self) -> PathBuf {
        self.root.join(PUBLISHER_KEY_FILE)
    }

    /// Path of the node's libp2p key.
    pub fn node_key(&self) -> PathBuf {
        self.root.join(NODE_KEY_FILE)
    }

    /// Path of `node.json`.
    pub fn runtime_file(&self) -> PathBuf {
        self.root.join(RUNTIME_FILE)
    }

    /// Path of the API token.
    pub fn api_token_file(&self) -> PathBuf {
        self.root.join(API_TOKEN_FILE)
    }

    /// The API token, if the file holds one.
    pub fn read_api_token(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.api_token_file()).ok()?;
        let token = text.trim();
        is_api_token(token).then(|| token.to_owned())
    }
}

/// Whether `t` has the form of an API token (64 hex digits).
pub fn is_api_token(t: &str) -> bool {
    t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `node.json`: how other commands find a running node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuntimeInfo {
    /// The node's peer id.
    pub peer_id: String,
    /// Its listen addresses, each ending in `/p2p/<id>`.
    pub listen_addrs: Vec<String>,
    /// Its API base URL.
    pub api: String,
    /// Its process id.
    pub pid: u32,
}

impl RuntimeInfo {
    /// Read `node.json`, if present and well-formed.
    pub fn read(dir: &DataDir) -> Option<Self> {
        let text = std::fs::read_to_string(dir.runtime_file()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Remove `node.json`.
    pub fn remove(dir: &DataDir) {
        let _ = std::fs::remove_file(dir.runtime_file());
    }

    /// Whether the process that wrote it still runs (always true where that cannot be told).
    pub fn process_alive(&self) -> bool {
        if cfg!(target_os = "linux") {
            Path::new(&format!("/proc/{}", self.pid)).exists()
        } else {
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_wins_and_key_lives_inside() {
        let d = DataDir::resolve(Some(Path::new("/tmp/pp"))).unwrap();
        assert_eq!(d.publisher_key(), Path::new("/tmp/pp/publisher.key"));
    }

    #[test]
    fn a_token_file_with_anything_but_a_token_is_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::new(dir.path());
        assert_eq!(d.read_api_token(), None);
        std::fs::write(d.api_token_file(), "not-a-token\n").unwrap();
        assert_eq!(d.read_api_token(), None);
        let t = "ab".repeat(32);
        std::fs::write(d.api_token_file(), format!("{t}\n")).unwrap();
        assert_eq!(d.read_api_token(), Some(t));
    }
}
