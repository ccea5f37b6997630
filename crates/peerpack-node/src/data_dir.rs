//! The data directory: everything a node keeps lives under one directory.
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
        is_token(token).then(|| token.to_owned())
    }

    /// The API token that mutating API calls need: read from `api-token`, or created there
    /// (32 random bytes as 64 hex digits, mode 0600, written atomically) on first start.
    pub fn load_or_create_api_token(&self) -> std::io::Result<String> {
        let path = self.api_token_file();
        if let Some(token) = self.read_api_token() {
            restrict(&path)?;
            return Ok(token);
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        // NamedTempFile creates the file with mode 0600.
        let tmp = tempfile::NamedTempFile::new_in(&self.root)?;
        std::fs::write(tmp.path(), format!("{token}\n"))?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path).map_err(|e| e.error)?;
        restrict(&path)?;
        Ok(token)
    }
}

fn is_token(t: &str) -> bool {
    t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Make `path` readable by its owner only (other local users must not read the token).
#[cfg(unix)]
fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_path: &Path) -> std::io::Result<()> {
    Ok(())
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

    /// Write `node.json` atomically.
    pub fn write(&self, dir: &DataDir) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let tmp = tempfile::NamedTempFile::new_in(dir.root())?;
        std::fs::write(tmp.path(), text + "\n")?;
        tmp.persist(dir.runtime_file()).map_err(|e| e.error)?;
        Ok(())
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
    fn the_api_token_is_created_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::new(dir.path());
        assert_eq!(d.read_api_token(), None);
        let t = d.load_or_create_api_token().unwrap();
        assert!(is_token(&t), "{t}");
        assert_eq!(d.load_or_create_api_token().unwrap(), t);
        assert_eq!(d.read_api_token(), Some(t));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.api_token_file())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn explicit_wins_and_key_lives_inside() {
        let d = DataDir::resolve(Some(Path::new("/tmp/pp"))).unwrap();
        assert_eq!(d.publisher_key(), Path::new("/tmp/pp/publisher.key"));
    }
}
