//! Which files of a package directory ship: everything, less what is never packed
//! ([`IGNORED_NAMES`]), what is left out by default ([`DEFAULT_IGNORES`]) and what the
//! package's own `.peerpackignore` leaves out (gitignore syntax; a `!pattern` line takes a
//! default back). `peerpack.toml` always ships.
//!
//! `pack`, `pack --list` and `publish` all decide through here, so what `pack` writes is what
//! `publish` publishes, byte for byte.

use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::{IGNORED_NAMES, PackError};
use crate::manifest::MANIFEST_FILE;

/// The file of ignore rules at the root of a package.
pub const IGNORE_FILE: &str = ".peerpackignore";

/// Left out unless `.peerpackignore` takes them back with `!`: secrets that are easy to leave
/// lying in a directory (and that a published, immutable version would make public for good),
/// dependency trees, and archives `peerpack pack` wrote into the package's own directory.
pub const DEFAULT_IGNORES: &[&str] = &[".env", ".env.*", "node_modules/", "/*.tar.zst"];

/// The ignore rules of one package directory.
pub struct Selection {
    rules: Gitignore,
}

impl Selection {
    /// The rules for `dir`: the defaults, then `dir/.peerpackignore` if there is one.
    pub fn for_dir(dir: &Path) -> Result<Self, PackError> {
        let mut builder = GitignoreBuilder::new(dir);
        for pattern in DEFAULT_IGNORES {
            builder
                .add_line(None, pattern)
                .map_err(|e| PackError::Ignore {
                    file: IGNORE_FILE.into(),
                    reason: e.to_string(),
                })?;
        }
        let file = dir.join(IGNORE_FILE);
        if file.is_file() {
            // `add` reads the file and answers the first line that does not parse.
            if let Some(e) = builder.add(&file) {
                return Err(PackError::Ignore {
                    file,
                    reason: e.to_string(),
                });
            }
        }
        let rules = builder.build().map_err(|e| PackError::Ignore {
            file: dir.join(IGNORE_FILE),
            reason: e.to_string(),
        })?;
        Ok(Self { rules })
    }

    /// Whether the entry at `rel` (relative to the package root, `/`-separated) ships.
    /// Directories must say so: `node_modules/` matches only a directory.
    pub fn ships(&self, rel: &str, is_dir: bool) -> bool {
        if rel == MANIFEST_FILE {
            return true;
        }
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if IGNORED_NAMES.contains(&name) {
            return false;
        }
        !self
            .rules
            .matched_path_or_any_parents(rel, is_dir)
            .is_ignore()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(ignore_file: Option<&str>) -> (tempfile::TempDir, Selection) {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = ignore_file {
            std::fs::write(dir.path().join(IGNORE_FILE), text).unwrap();
        }
        let s = Selection::for_dir(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn defaults_leave_out_secrets_dependencies_and_own_archives() {
        let (_d, s) = selection(None);
        for (rel, dir) in [
            (".env", false),
            (".env.local", false),
            ("config/.env.production", false),
            ("node_modules", true),
            ("web/node_modules/react/index.js", false),
            ("rust-cli-1.2.0.tar.zst", false),
            (".git", true),
            ("sub/.DS_Store", false),
        ] {
            assert!(!s.ships(rel, dir), "{rel} must not ship");
        }
        for (rel, dir) in [
            ("peerpack.toml", false),
            ("README.md", false),
            ("template/src/main.rs", false),
            ("fixtures/data.tar.zst", false),
            ("environment.md", false),
            ("node_modules_notes.txt", false),
        ] {
            assert!(s.ships(rel, dir), "{rel} must ship");
        }
    }

    #[test]
    fn the_package_file_adds_rules_and_takes_defaults_back() {
        let (_d, s) = selection(Some("# build output\ndist/\n*.log\n!.env.example\n"));
        assert!(!s.ships("dist", true));
        assert!(!s.ships("dist/app.js", false));
        assert!(!s.ships("logs/run.log", false));
        assert!(s.ships(".env.example", false));
        assert!(!s.ships(".env", false));
    }

    #[test]
    fn the_manifest_always_ships() {
        let (_d, s) = selection(Some("*\n"));
        assert!(s.ships("peerpack.toml", false));
        assert!(!s.ships("README.md", false));
    }
}
