//! `peerpack.lock`: the exact versions and archives an install chose.
//!
//! ```toml
//! # Written by peerpack install. `peerpack install --locked` installs exactly this.
//! version = 1
//!
//! [[package]]
//! name = "rust-cli"
//! version = "1.2.0"
//! content_id = "blake3:..."
//! publisher = "ed25519:..."
//! dependencies = ["ci-workflow"]
//! ```
//!
//! Entries are sorted by name; one version per name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// File name of the lock file.
pub const FILE_NAME: &str = peerpack_api::LOCK_FILE;
/// The format version written.
pub const FORMAT: u32 = 1;

const HEADER: &str =
    "# Written by peerpack install. `peerpack install --locked` installs exactly this.\n";

/// The lock file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    /// Format version (1).
    pub version: u32,
    /// The packages, sorted by name.
    #[serde(default, rename = "package")]
    pub packages: Vec<Locked>,
}

/// One locked package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locked {
    /// Package name.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// The archive's content id.
    pub content_id: String,
    /// The publisher key that signed it.
    pub publisher: String,
    /// Names of the packages it depends on (each locked too).
    #[serde(default)]
    pub dependencies: Vec<String>,
}

impl Lockfile {
    /// Parse a lock file's text; the error names what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let lock: Self =
            toml::from_str(text).map_err(|e| format!("{FILE_NAME}: {}", e.to_string().trim()))?;
        if lock.version != FORMAT {
            return Err(format!(
                "{FILE_NAME}: format version {} is not supported (this peerpack writes {FORMAT})",
                lock.version
            ));
        }
        Ok(lock)
    }

    /// The text to write.
    pub fn to_text(&self) -> String {
        let mut sorted = self.clone();
        sorted.version = FORMAT;
        sorted.packages.sort_by(|a, b| a.name.cmp(&b.name));
        let body = toml::to_string(&sorted).unwrap_or_default();
        format!("{HEADER}{body}")
    }

    /// The entry for `name`.
    pub fn get(&self, name: &str) -> Option<&Locked> {
        self.packages.iter().find(|p| p.name == name)
    }

    /// Add or replace entries (by name).
    pub fn merge(&mut self, entries: impl IntoIterator<Item = Locked>) {
        let mut by_name: BTreeMap<String, Locked> = self
            .packages
            .drain(..)
            .map(|p| (p.name.clone(), p))
            .collect();
        for e in entries {
            by_name.insert(e.name.clone(), e);
        }
        self.version = FORMAT;
        self.packages = by_name.into_values().collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_file_round_trips_and_bad_ones_are_named() {
        let mut lock = Lockfile::default();
        lock.merge([Locked {
            name: "b".into(),
            version: "1.0.0".into(),
            content_id: "blake3:00".into(),
            publisher: "ed25519:11".into(),
            dependencies: vec!["a".into()],
        }]);
        lock.merge([Locked {
            name: "a".into(),
            version: "2.0.0".into(),
            content_id: "blake3:22".into(),
            publisher: "ed25519:11".into(),
            dependencies: vec![],
        }]);
        let text = lock.to_text();
        assert!(text.starts_with("# Written by peerpack"));
        let back = Lockfile::parse(&text).unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.packages[0].name, "a");
        let err = Lockfile::parse("version = 1\n[[package]]\nname = \"a\"\n").unwrap_err();
        assert!(
            err.contains("peerpack.lock") && err.contains("version"),
            "{err}"
        );
        let err = Lockfile::parse("version = 9\n").unwrap_err();
        assert!(err.contains("format version 9"), "{err}");
    }
}
