//! `peerpack.lock`: what a project asked for, where it installs, and the exact versions and
//! archives an install chose.
//!
//! ```toml
//! # Written by peerpack install. `peerpack install --locked` installs exactly this.
//! version = 2
//! roots = ["rust-cli@^1.2"]
//! to = "peerpack_packages"
//!
//! [[package]]
//! name = "rust-cli"
//! version = "1.2.0"
//! content_id = "blake3:..."
//! publisher = "ed25519:..."
//! dependencies = ["ci-workflow"]
//! ```
//!
//! `roots` are the packages asked for by name (`NAME` or `NAME@REQ`), sorted by name; the
//! packages are their dependency closure, sorted by name, one version per name. `to` is the
//! install directory, relative to the lock file's directory unless absolute. Version 1 files
//! (no `roots`, no `to`) are read too: their roots are the packages no other package needs.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// File name of the lock file.
pub const FILE_NAME: &str = crate::install::LOCK_FILE;
/// The format version written.
pub const FORMAT: u32 = 2;
/// The oldest format version read.
pub const OLDEST_FORMAT: u32 = 1;

const HEADER: &str =
    "# Written by peerpack install. `peerpack install --locked` installs exactly this.\n";

/// The lock file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    /// Format version.
    pub version: u32,
    /// The packages asked for, `NAME` or `NAME@REQ`, one per name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roots: Vec<String>,
    /// The install directory: relative to the lock file's directory, or absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The packages, sorted by name.
    #[serde(default, rename = "package", skip_serializing_if = "Vec::is_empty")]
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

/// The name part of a root spec (`NAME` or `NAME@REQ`).
pub fn root_name(spec: &str) -> &str {
    spec.split_once('@').map_or(spec, |(n, _)| n).trim()
}

impl Lockfile {
    /// Parse a lock file's text; the error names what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lock: Self =
            toml::from_str(text).map_err(|e| format!("{FILE_NAME}: {}", e.to_string().trim()))?;
        if !(OLDEST_FORMAT..=FORMAT).contains(&lock.version) {
            return Err(format!(
                "{FILE_NAME}: format version {} is not supported (this peerpack reads {OLDEST_FORMAT} to {FORMAT})",
                lock.version
            ));
        }
        let mut names = BTreeSet::new();
        for p in &lock.packages {
            if !names.insert(p.name.as_str()) {
                return Err(format!(
                    "{FILE_NAME}: {} is locked twice; a lock holds one version per name",
                    p.name
                ));
            }
        }
        if lock.roots.is_empty() {
            lock.roots = lock.implied_roots();
        }
        Ok(lock)
    }

    /// The packages no other locked package depends on: the roots of a version 1 file.
    fn implied_roots(&self) -> Vec<String> {
        let needed: BTreeSet<&str> = self
            .packages
            .iter()
            .flat_map(|p| p.dependencies.iter().map(String::as_str))
            .collect();
        self.packages
            .iter()
            .filter(|p| !needed.contains(p.name.as_str()))
            .map(|p| p.name.clone())
            .collect()
    }

    /// The text to write.
    pub fn to_text(&self) -> String {
        let mut sorted = self.clone();
        sorted.version = FORMAT;
        sorted.packages.sort_by(|a, b| a.name.cmp(&b.name));
        sorted.roots.sort_by(|a, b| root_name(a).cmp(root_name(b)));
        let body = toml::to_string(&sorted).unwrap_or_default();
        format!("{HEADER}{body}")
    }

    /// The entry for `name`.
    pub fn get(&self, name: &str) -> Option<&Locked> {
        self.packages.iter().find(|p| p.name == name)
    }

    /// Whether `name` was asked for (rather than pulled in as a dependency).
    pub fn is_root(&self, name: &str) -> bool {
        self.roots.iter().any(|r| root_name(r) == name)
    }

    /// The roots with `specs` added, each replacing a root of the same name.
    pub fn roots_with(&self, specs: &[String]) -> Vec<String> {
        let mut by_name: BTreeMap<String, String> = self
            .roots
            .iter()
            .map(|r| (root_name(r).to_owned(), r.clone()))
            .collect();
        for s in specs {
            by_name.insert(root_name(s).to_owned(), s.trim().to_owned());
        }
        by_name.into_values().collect()
    }

    /// The locked packages that depend on `name`.
    pub fn dependents(&self, name: &str) -> Vec<&Locked> {
        self.packages
            .iter()
            .filter(|p| p.dependencies.iter().any(|d| d == name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locked(name: &str, version: &str, deps: &[&str]) -> Locked {
        Locked {
            name: name.into(),
            version: version.into(),
            content_id: "blake3:00".into(),
            publisher: "ed25519:11".into(),
            dependencies: deps.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    #[test]
    fn a_lock_file_round_trips_and_bad_ones_are_named() {
        let lock = Lockfile {
            version: FORMAT,
            roots: vec!["b@^1".into()],
            to: Some("vendor".into()),
            packages: vec![locked("b", "1.0.0", &["a"]), locked("a", "2.0.0", &[])],
        };
        let text = lock.to_text();
        assert!(text.starts_with("# Written by peerpack"), "{text}");
        let back = Lockfile::parse(&text).unwrap();
        assert_eq!(back.packages[0].name, "a");
        assert_eq!(back.roots, ["b@^1"]);
        assert_eq!(back.to.as_deref(), Some("vendor"));
        assert!(back.is_root("b") && !back.is_root("a"));
        assert_eq!(back.dependents("a")[0].name, "b");
        let err = Lockfile::parse("version = 2\n[[package]]\nname = \"a\"\n").unwrap_err();
        assert!(
            err.contains("peerpack.lock") && err.contains("version"),
            "{err}"
        );
        let err = Lockfile::parse("version = 9\n").unwrap_err();
        assert!(err.contains("format version 9"), "{err}");
        let twice = Lockfile {
            version: FORMAT,
            packages: vec![locked("a", "1.0.0", &[]), locked("a", "2.0.0", &[])],
            ..Lockfile::default()
        };
        let err = Lockfile::parse(&toml::to_string(&twice).unwrap()).unwrap_err();
        assert!(err.contains("a is locked twice"), "{err}");
    }

    #[test]
    fn a_version_1_file_gets_the_packages_nobody_needs_as_roots() {
        let v1 = "version = 1\n\
            [[package]]\nname = \"a\"\nversion = \"1.0.0\"\ncontent_id = \"blake3:00\"\npublisher = \"ed25519:11\"\n\
            [[package]]\nname = \"b\"\nversion = \"1.0.0\"\ncontent_id = \"blake3:00\"\npublisher = \"ed25519:11\"\ndependencies = [\"a\"]\n";
        let lock = Lockfile::parse(v1).unwrap();
        assert_eq!(lock.roots, ["b"]);
        assert!(lock.to_text().contains("version = 2"));
        assert_eq!(
            lock.roots_with(&["a@^1".into(), "b@^2".into()]),
            ["a@^1", "b@^2"]
        );
    }
}
