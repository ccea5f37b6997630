//! Content ids: the BLAKE3 hash of an archive's bytes.

use std::fmt;
use std::str::FromStr;

/// The prefix of a content id's text form.
pub const PREFIX: &str = "blake3:";

/// The id of an archive: BLAKE3 of its bytes, written `blake3:<64 lowercase hex>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentId([u8; 32]);

/// Why a string is not a content id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid content id {0:?}: expected \"blake3:\" followed by 64 hex digits")]
pub struct ContentIdError(pub String);

impl ContentId {
    /// The content id of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// A content id from its 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64-digit lowercase hex form, without the prefix.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl From<blake3::Hash> for ContentId {
    fn from(h: blake3::Hash) -> Self {
        Self(*h.as_bytes())
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.to_hex())
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentId({self})")
    }
}

impl FromStr for ContentId {
    type Err = ContentIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ContentIdError(s.to_owned());
        let hex_part = s.strip_prefix(PREFIX).ok_or_else(err)?;
        if hex_part.len() != 64 || hex_part.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).map_err(|_| err())?;
        Ok(Self(out))
    }
}

impl serde::Serialize for ContentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ContentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let id = ContentId::of(b"hello");
        let text = id.to_string();
        assert!(text.starts_with("blake3:"));
        assert_eq!(text.len(), 7 + 64);
        assert_eq!(text.parse::<ContentId>().unwrap(), id);
    }

    #[test]
    fn rejects_malformed() {
        let hex = ContentId::of(b"x").to_hex();
        for bad in [
            hex.clone(),
            format!("sha256:{hex}"),
            format!("blake3:{}", &hex[..63]),
            format!("blake3:{}", hex.to_uppercase()),
            format!("blake3:{}zz", &hex[..62]),
        ] {
            assert!(bad.parse::<ContentId>().is_err(), "{bad} accepted");
        }
    }
}
