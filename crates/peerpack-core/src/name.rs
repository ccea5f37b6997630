//! Package names.

use std::fmt;
use std::str::FromStr;

use crate::limits::MAX_NAME_LEN;

/// A valid package name: 1 to 64 bytes of `[a-z0-9-]`, starting with a letter or digit.
///
/// Names are what users type (`peerpack install rust-cli`), what the DHT keys are built from
/// (`/peerpack/pkg/<name>`) and what name ownership is attached to, so they are deliberately
/// narrow: lowercase ASCII only, so two names that look alike are the same name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageName(String);

/// Why a string is not a valid package name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("a package name cannot be empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`].
    #[error("a package name is at most {MAX_NAME_LEN} characters, this one has {0}")]
    TooLong(usize),
    /// The name contains a character outside `[a-z0-9-]`.
    #[error(
        "invalid character {ch:?} at position {pos}: names use only lowercase letters a-z, digits and '-'"
    )]
    InvalidChar {
        /// The offending character.
        ch: char,
        /// Its position (0-based, in characters).
        pos: usize,
    },
    /// The name starts with `-`.
    #[error("a package name must start with a lowercase letter or a digit, not '-'")]
    LeadingHyphen,
}

impl PackageName {
    /// Validate `s` as a package name.
    pub fn new(s: &str) -> Result<Self, NameError> {
        validate(s)?;
        Ok(Self(s.to_owned()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn validate(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if let Some((pos, ch)) = s
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(NameError::InvalidChar { ch, pos });
    }
    if s.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(s.len()));
    }
    if s.starts_with('-') {
        return Err(NameError::LeadingHyphen);
    }
    Ok(())
}

impl FromStr for PackageName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackageName({})", self.0)
    }
}

impl AsRef<str> for PackageName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for PackageName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for PackageName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for n in ["a", "rust-cli", "0day", "axum-service-2", &"x".repeat(64)] {
            assert_eq!(PackageName::new(n).unwrap().as_str(), n);
        }
    }

    #[test]
    fn rejects_invalid_names() {
        assert_eq!(PackageName::new(""), Err(NameError::Empty));
        assert_eq!(
            PackageName::new(&"x".repeat(65)),
            Err(NameError::TooLong(65))
        );
        assert_eq!(PackageName::new("-x"), Err(NameError::LeadingHyphen));
        assert_eq!(
            PackageName::new("Rust"),
            Err(NameError::InvalidChar { ch: 'R', pos: 0 })
        );
        assert_eq!(
            PackageName::new("a_b"),
            Err(NameError::InvalidChar { ch: '_', pos: 1 })
        );
        assert!(PackageName::new("a/../b").is_err());
    }
}
