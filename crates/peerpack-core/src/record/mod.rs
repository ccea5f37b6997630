//! Signed package records and package index records.
//!
//! A **package record** describes one published version: its manifest, the content id and size
//! of its archive, the publisher's key, a sequence number and a timestamp, signed by the
//! publisher. A **package index record** is the owner's signed list of every version of one
//! name with the hash of each version's record, and a sequence number that only grows: one DHT
//! read tells a node every version, and a lower sequence number (a rollback) or another key (a
//! fork) is refused.
//!
//! Each record has exactly one encoding (see `crate::encoding` for the primitives): a domain
//! tag, the fields in a fixed order, then the 64-byte ed25519 signature over everything before
//! it. The wire bytes are the canonical bytes; decoding re-encodes and compares, so a record
//! cannot be re-encoded into another valid form, and its hash is stable.
//!
//! Package record fields, in order: tag `peerpack/record/v1`, name, version, description,
//! license, authors, categories, tags, homepage?, repository?, readme?, dependencies (list of
//! name, requirement; sorted by name), content id (32 bytes), archive size (u64), publisher key
//! (32 bytes), seq (u64), published_at (u64, Unix seconds), signature (64 bytes).
//!
//! Index record fields, in order: tag `peerpack/index/v1`, name, publisher key (32 bytes), seq
//! (u64), updated_at (u64), versions (list of version, record hash (32 bytes); strictly
//! ascending by semver precedence), signature (64 bytes). An index in which some version is
//! yanked or deprecated is tagged `peerpack/index/v2` instead, and each of its versions also
//! carries two optional strings: the yank reason and the deprecation message. Only such an
//! index takes the second form, so every index still has exactly one encoding.

use std::collections::BTreeMap;
use std::fmt;

use semver::{Version, VersionReq};

use crate::content_id::ContentId;
use crate::encoding::{DecodeError, Reader, Writer};
use crate::keys::{PublicKey, PublisherKey};
use crate::limits::*;
use crate::manifest::{Manifest, Problem};
use crate::name::PackageName;

mod index;
mod package;

pub use index::{IndexEntry, IndexRecord, IndexUpdate};
pub use package::{PackageRecord, RecordFields};

/// Domain tag of package records.
pub const RECORD_TAG: &str = "peerpack/record/v1";
/// Domain tag of package index records.
pub const INDEX_TAG: &str = "peerpack/index/v1";
/// Domain tag of package index records in which some version is yanked or deprecated.
pub const INDEX_TAG_V2: &str = "peerpack/index/v2";

/// BLAKE3 of a record's encoded bytes (signature included).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordHash(pub [u8; 32]);

impl RecordHash {
    /// The hash of encoded record bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
}

impl fmt::Display for RecordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for RecordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordHash({self})")
    }
}

impl serde::Serialize for RecordHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a record is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The bytes are not a well-formed record.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The signature does not verify with the record's publisher key.
    #[error(
        "the signature of the record for `{name}` does not verify with its publisher key {publisher}"
    )]
    BadSignature {
        /// The record's name.
        name: PackageName,
        /// The key it claims.
        publisher: PublicKey,
    },
    /// The record is for another name than the one asked for (e.g. under another DHT key).
    #[error("expected a record for `{expected}`, got one for `{found}`")]
    WrongName {
        /// The name asked for.
        expected: PackageName,
        /// The record's name.
        found: PackageName,
    },
    /// The record is for another version than the one asked for.
    #[error("expected a record for version {expected}, got one for version {found}")]
    WrongVersion {
        /// The version asked for.
        expected: Version,
        /// The record's version.
        found: Version,
    },
    /// The record is signed by a key that does not own the name.
    #[error("`{name}` belongs to {owner}, but this record is signed by {offered}")]
    WrongPublisher {
        /// The name.
        name: PackageName,
        /// The key that owns it.
        owner: PublicKey,
        /// The key that signed the record.
        offered: PublicKey,
    },
    /// An index record whose sequence number is lower than the one already known.
    #[error(
        "index record for `{name}` goes backwards: sequence {offered} is lower than the known {current}"
    )]
    Rollback {
        /// The name.
        name: PackageName,
        /// The known sequence number.
        current: u64,
        /// The offered one.
        offered: u64,
    },
    /// Two different index records with the same sequence number.
    #[error("two different index records for `{name}` carry sequence {seq}")]
    Equivocation {
        /// The name.
        name: PackageName,
        /// The sequence number both carry.
        seq: u64,
    },
    /// A record that gives a published version other content: versions are immutable.
    #[error(
        "{} {} was published with content {}; a record giving it {} is refused (published versions never change)",
        .0.name, .0.version, .0.known, .0.offered
    )]
    VersionChanged(Box<VersionChange>),
    /// Two different package records for one version with the same sequence number.
    #[error("two different records for {name} {version} carry sequence {seq}")]
    RecordEquivocation {
        /// The name.
        name: PackageName,
        /// The version.
        version: Version,
        /// The sequence number both carry.
        seq: u64,
    },
    /// A curator list whose signature does not verify with its curator key.
    #[error("the signature of the curator list does not verify with its curator key {curator}")]
    BadCuratorSignature {
        /// The key it claims.
        curator: PublicKey,
    },
    /// Two different curator lists from one curator with the same sequence number.
    #[error("two different curator lists from {curator} carry sequence {seq}")]
    CuratorEquivocation {
        /// The curator.
        curator: PublicKey,
        /// The sequence number both carry.
        seq: u64,
    },
    /// The manifest given for signing is invalid.
    #[error("invalid manifest: {0}")]
    Manifest(Problem),
    /// The encoded record would exceed [`MAX_RECORD_SIZE`].
    #[error("the record would be {0} bytes, larger than the {MAX_RECORD_SIZE} byte limit")]
    TooLarge(usize),
}

/// The details of [`RecordError::VersionChanged`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionChange {
    /// The name.
    pub name: PackageName,
    /// The version.
    pub version: Version,
    /// The content id first seen for it.
    pub known: ContentId,
    /// The content id offered.
    pub offered: ContentId,
}

impl RecordError {
    /// Whether the bytes themselves are bad: malformed, forged, or not what was asked for. A
    /// validly signed record that only conflicts with what this node holds (another owner, an
    /// older or equivocating sequence, a changed version) is not: an honest peer may relay it,
    /// so only bad bytes cost the sender reputation.
    pub fn is_invalid_data(&self) -> bool {
        matches!(
            self,
            Self::Decode(_)
                | Self::BadSignature { .. }
                | Self::BadCuratorSignature { .. }
                | Self::WrongName { .. }
                | Self::WrongVersion { .. }
                | Self::Manifest(_)
                | Self::TooLarge(_)
        )
    }
}

/// Check that `offered` is `owner`, the key that owns `name`.
pub fn check_owner(
    name: &PackageName,
    owner: &PublicKey,
    offered: &PublicKey,
) -> Result<(), RecordError> {
    if owner == offered {
        Ok(())
    } else {
        Err(RecordError::WrongPublisher {
            name: name.clone(),
            owner: *owner,
            offered: *offered,
        })
    }
}

fn decode_name(s: &str, field: &'static str) -> Result<PackageName, DecodeError> {
    PackageName::new(s).map_err(|e| DecodeError::Invalid {
        field,
        reason: format!("{s:?}: {e}"),
    })
}

fn decode_version(s: &str) -> Result<Version, DecodeError> {
    Version::parse(s).map_err(|e| DecodeError::Invalid {
        field: "version",
        reason: format!("{s:?}: {e}"),
    })
}

fn decode_key(bytes: &[u8; 32]) -> Result<PublicKey, DecodeError> {
    PublicKey::from_bytes(bytes).map_err(|e| DecodeError::Invalid {
        field: "publisher",
        reason: e.to_string(),
    })
}
