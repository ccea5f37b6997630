//! The `peerpack.toml` manifest.
//!
//! ```toml
//! [package]
//! name = "rust-cli"                   # required, see PackageName
//! version = "1.2.0"                   # required, semver
//! description = "A Rust CLI template" # required, at most 1000 characters
//! license = "MIT"                     # required
//! authors = ["Ada <ada@example.org>"] # required, at least one
//! categories = ["cli"]                # optional, at most 5, [a-z0-9][a-z0-9-]*
//! tags = ["rust", "clap"]             # optional, at most 20, same form
//! homepage = "https://example.org"    # optional, http(s) URL
//! repository = "https://example.org"  # optional, http(s) URL
//! readme = "README.md"                # optional, a file inside the package
//!
//! [dependencies]
//! ci-workflow = "^1.0"                # package name = semver requirement
//! ```
//!
//! Unknown keys are errors (a typo must not silently drop data), and every error names the file,
//! the key and what is wrong.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use semver::{Version, VersionReq};
use toml::{Table, Value};

use crate::limits::*;
use crate::name::{NameError, PackageName};

/// The manifest's file name inside a package directory.
pub const MANIFEST_FILE: &str = "peerpack.toml";

const TOP_KEYS: &[&str] = &["package", "dependencies"];
const PACKAGE_KEYS: &[&str] = &[
    "name",
    "version",
    "description",
    "license",
    "authors",
    "categories",
    "tags",
    "homepage",
    "repository",
    "readme",
];

/// A validated package manifest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Manifest {
    /// The package's name.
    pub name: PackageName,
    /// Its version.
    pub version: Version,
    /// One paragraph saying what it is; searched.
    pub description: String,
    /// License expression (SPDX, e.g. `MIT OR Apache-2.0`).
    pub license: String,
    /// Authors, e.g. `Ada Lovelace <ada@example.org>`; searched.
    pub authors: Vec<String>,
    /// Categories (`[a-z0-9][a-z0-9-]*`); filterable.
    pub categories: Vec<String>,
    /// Tags (`[a-z0-9][a-z0-9-]*`); filterable and searched.
    pub tags: Vec<String>,
    /// Project home page.
    pub homepage: Option<String>,
    /// Source repository.
    pub repository: Option<String>,
    /// Path of the README inside the package.
    pub readme: Option<String>,
    /// Dependencies: name to semver requirement.
    pub dependencies: BTreeMap<PackageName, VersionReq>,
}

/// What is wrong with a manifest field. The key is written as a TOML path, e.g.
/// `package.version` or `dependencies.ci-workflow`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The file is not valid TOML.
    #[error("invalid TOML: {0}")]
    Syntax(String),
    /// A required key is absent.
    #[error("missing required key `{0}`")]
    Missing(String),
    /// A key that the manifest format does not have.
    #[error("unknown key `{key}` (known keys: {known})")]
    Unknown {
        /// The key.
        key: String,
        /// The keys allowed at that place.
        known: String,
    },
    /// A value of the wrong TOML type.
    #[error("`{key}` must be {expected}, found {found}")]
    WrongType {
        /// The key.
        key: String,
        /// What was expected.
        expected: &'static str,
        /// The TOML type found.
        found: &'static str,
    },
    /// A name that is not a valid package name.
    #[error("`{key}` = {value:?} is not a valid package name: {reason}")]
    InvalidName {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Why.
        reason: NameError,
    },
    /// A version that is not semver.
    #[error("`{key}` = {value:?} is not a valid semver version (like \"1.2.3\"): {reason}")]
    InvalidVersion {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// The parser's explanation.
        reason: String,
    },
    /// A dependency requirement that is not a semver requirement.
    #[error("`{key}` = {value:?} is not a valid version requirement (like \"^1.2\"): {reason}")]
    InvalidRequirement {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// The parser's explanation.
        reason: String,
    },
    /// A string longer than its limit.
    #[error("`{key}` is {len} characters long; the limit is {max}")]
    TooLong {
        /// The key.
        key: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A list or table with more entries than its limit.
    #[error("`{key}` has {count} entries; the limit is {max}")]
    TooMany {
        /// The key.
        key: String,
        /// How many entries it has.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Any other invalid value.
    #[error("`{key}`: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// A manifest that could not be read or is invalid; names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file could not be read.
    #[error("{}: cannot read the manifest", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid manifest.
    #[error("{}: {problem}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        problem: Problem,
    },
}

impl ManifestError {
    /// The problem, when the file was read but is invalid.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Invalid { problem, .. } => Some(problem),
            Self::Read { .. } => None,
        }
    }
}

impl Manifest {
    /// Read and validate `DIR/peerpack.toml`.
    pub fn from_dir(dir: &Path) -> Result<Self, ManifestError> {
        Self::from_file(&dir.join(MANIFEST_FILE))
    }

    /// Read and validate a manifest file.
    pub fn from_file(file: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(file).map_err(|source| ManifestError::Read {
            file: file.to_owned(),
            source,
        })?;
        Self::parse(&text, file)
    }

    /// Parse and validate manifest text; `file` is only used in error messages.
    pub fn parse(text: &str, file: &Path) -> Result<Self, ManifestError> {
        parse_table(text).map_err(|problem| ManifestError::Invalid {
            file: file.to_owned(),
            problem,
        })
    }

    /// Check every field against the format's rules and limits. Parsing already does this;
    /// decoding a record from the network does it again.
    pub fn validate(&self) -> Result<(), Problem> {
        // Decoders read a version of at most MAX_REQ_LEN bytes (it is ASCII: characters are
        // bytes); a longer one would sign a record no node accepts.
        let version_len = self.version.to_string().len();
        if version_len > MAX_REQ_LEN {
            return Err(Problem::TooLong {
                key: "package.version".into(),
                len: version_len,
                max: MAX_REQ_LEN,
            });
        }
        check_text(
            "package.description",
            &self.description,
            MAX_DESCRIPTION_LEN,
            true,
        )?;
        check_text("package.license", &self.license, MAX_LICENSE_LEN, false)?;
        if self.authors.is_empty() {
            return Err(invalid("package.authors", "list at least one author"));
        }
        check_count("package.authors", self.authors.len(), MAX_AUTHORS)?;
        for a in &self.authors {
            check_text("package.authors", a, MAX_AUTHOR_LEN, false)?;
        }
        check_keywords("package.categories", &self.categories, MAX_CATEGORIES)?;
        check_keywords("package.tags", &self.tags, MAX_TAGS)?;
        for (key, url) in [
            ("package.homepage", &self.homepage),
            ("package.repository", &self.repository),
        ] {
            if let Some(url) = url {
                check_url(key, url)?;
            }
        }
        if let Some(readme) = &self.readme {
            check_relative_path("package.readme", readme)?;
        }
        check_count("dependencies", self.dependencies.len(), MAX_DEPENDENCIES)?;
        for (dep, req) in &self.dependencies {
            let key = format!("dependencies.{dep}");
            if *dep == self.name {
                return Err(invalid(&key, "a package cannot depend on itself"));
            }
            let text = req.to_string();
            if text.chars().count() > MAX_REQ_LEN {
                return Err(Problem::TooLong {
                    key,
                    len: text.chars().count(),
                    max: MAX_REQ_LEN,
                });
            }
        }
        Ok(())
    }
}

fn parse_table(text: &str) -> Result<Manifest, Problem> {
    let table: Table = text
        .parse()
        .map_err(|e: toml::de::Error| Problem::Syntax(e.to_string().trim_end().to_owned()))?;
    check_known("", &table, TOP_KEYS)?;
    let package = match table.get("package") {
        None => return Err(Problem::Missing("package".into())),
        Some(Value::Table(t)) => t,
        Some(other) => return Err(wrong_type("package", "a table", other)),
    };
    check_known("package.", package, PACKAGE_KEYS)?;

    let name_text = required_str(package, "name")?;
    let name = PackageName::new(name_text).map_err(|reason| Problem::InvalidName {
        key: "package.name".into(),
        value: name_text.into(),
        reason,
    })?;
    let version_text = required_str(package, "version")?;
    let version = Version::parse(version_text).map_err(|e| Problem::InvalidVersion {
        key: "package.version".into(),
        value: version_text.into(),
        reason: e.to_string(),
    })?;
    let description = required_str(package, "description")?.to_owned();
    let license = required_str(package, "license")?.to_owned();
    let authors = string_list(package, "authors")?
        .ok_or_else(|| Problem::Missing("package.authors".into()))?;
    let categories = string_list(package, "categories")?.unwrap_or_default();
    let tags = string_list(package, "tags")?.unwrap_or_default();
    let homepage = optional_str(package, "homepage")?;
    let repository = optional_str(package, "repository")?;
    let readme = optional_str(package, "readme")?;

    let mut dependencies = BTreeMap::new();
    match table.get("dependencies") {
        None => {}
        Some(Value::Table(deps)) => {
            for (dep, value) in deps {
                let key = format!("dependencies.{dep}");
                let dep_name = PackageName::new(dep).map_err(|reason| Problem::InvalidName {
                    key: key.clone(),
                    value: dep.clone(),
                    reason,
                })?;
                let Value::String(req_text) = value else {
                    return Err(wrong_type(&key, "a version requirement string", value));
                };
                let req = VersionReq::parse(req_text).map_err(|e| Problem::InvalidRequirement {
                    key: key.clone(),
                    value: req_text.clone(),
                    reason: e.to_string(),
                })?;
                dependencies.insert(dep_name, req);
            }
        }
        Some(other) => return Err(wrong_type("dependencies", "a table", other)),
    }

    let manifest = Manifest {
        name,
        version,
        description,
        license,
        authors,
        categories,
        tags,
        homepage,
        repository,
        readme,
        dependencies,
    };
    manifest.validate()?;
    Ok(manifest)
}

fn check_known(prefix: &str, table: &Table, known: &[&str]) -> Result<(), Problem> {
    match table.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(Problem::Unknown {
            key: format!("{prefix}{k}"),
            known: known.join(", "),
        }),
        None => Ok(()),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

fn wrong_type(key: &str, expected: &'static str, found: &Value) -> Problem {
    Problem::WrongType {
        key: key.into(),
        expected,
        found: type_name(found),
    }
}

fn invalid(key: &str, reason: impl fmt::Display) -> Problem {
    Problem::Invalid {
        key: key.into(),
        reason: reason.to_string(),
    }
}

fn optional_str(t: &Table, key: &str) -> Result<Option<String>, Problem> {
    match t.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(&format!("package.{key}"), "a string", other)),
    }
}

fn required_str<'t>(t: &'t Table, key: &str) -> Result<&'t str, Problem> {
    match t.get(key) {
        None => Err(Problem::Missing(format!("package.{key}"))),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(wrong_type(&format!("package.{key}"), "a string", other)),
    }
}

fn string_list(t: &Table, key: &str) -> Result<Option<Vec<String>>, Problem> {
    let full = format!("package.{key}");
    match t.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(wrong_type(&full, "an array of strings", other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(wrong_type(&full, "an array of strings", other)),
    }
}

fn check_count(key: &str, count: usize, max: usize) -> Result<(), Problem> {
    if count > max {
        return Err(Problem::TooMany {
            key: key.into(),
            count,
            max,
        });
    }
    Ok(())
}

fn check_text(key: &str, value: &str, max: usize, multiline: bool) -> Result<(), Problem> {
    if value.trim().is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    let len = value.chars().count();
    if len > max {
        return Err(Problem::TooLong {
            key: key.into(),
            len,
            max,
        });
    }
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && !(multiline && (*c == '\n' || *c == '\t')))
    {
        return Err(invalid(
            key,
            format!("contains the control character {c:?}"),
        ));
    }
    Ok(())
}

/// Checks a category or tag list: `[a-z0-9][a-z0-9-]*`, at most `MAX_KEYWORD_LEN` bytes, no
/// duplicates.
fn check_keywords(key: &str, items: &[String], max: usize) -> Result<(), Problem> {
    check_count(key, items.len(), max)?;
    for (i, item) in items.iter().enumerate() {
        let valid_chars = item
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if item.is_empty() || !valid_chars || item.starts_with('-') {
            return Err(invalid(
                key,
                format!(
                    "{item:?} must use only lowercase letters, digits and '-', not starting with '-'"
                ),
            ));
        }
        if item.len() > MAX_KEYWORD_LEN {
            return Err(Problem::TooLong {
                key: key.into(),
                len: item.len(),
                max: MAX_KEYWORD_LEN,
            });
        }
        if items[..i].contains(item) {
            return Err(invalid(key, format!("{item:?} is listed twice")));
        }
    }
    Ok(())
}

fn check_url(key: &str, url: &str) -> Result<(), Problem> {
    check_text(key, url, MAX_URL_LEN, false)?;
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !url.contains(char::is_whitespace) => Ok(()),
        _ => Err(invalid(
            key,
            format!("{url:?} is not an http:// or https:// URL"),
        )),
    }
}

fn check_relative_path(key: &str, path: &str) -> Result<(), Problem> {
    check_text(key, path, MAX_URL_LEN, false)?;
    let p = Path::new(path);
    if !p.components().all(|c| matches!(c, Component::Normal(_))) || path.contains('\\') {
        return Err(invalid(
            key,
            format!("{path:?} must be a relative path inside the package, without '..'"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
