//! The data directory: everything a node keeps lives under one directory.
//!
//! ```text
//! DATA_DIR/
//!   publisher.key   the publisher's ed25519 secret key (mode 0600)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_wins_and_key_lives_inside() {
        let d = DataDir::resolve(Some(Path::new("/tmp/pp"))).unwrap();
        assert_eq!(d.publisher_key(), Path::new("/tmp/pp/publisher.key"));
    }
}
