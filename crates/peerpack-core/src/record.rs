//! Signed package records and package index records.
//!
//! A **package record** describes one published version: its manifest, the content id and size
//! of its archive, the publisher's key, a sequence number and a timestamp, signed by the
//! publisher. A **package index record** is the owner's signed list of every version of one
//! name with the hash of each version's record, and a sequence number that only grows: one DHT
//! read tells a node every version, and a lower sequence number (a rollback) or another key (a
//! fork) is refused.
//!
//! Each record has exactly one encoding (see [`crate::encoding`] for the primitives): a domain
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
//! ascending by semver precedence), signature (64 bytes).

use std::collections::BTreeMap;
use std::fmt;

use semver::{Version, VersionReq};

use crate::content_id::ContentId;
use crate::encoding::{DecodeError, Reader, Writer};
use crate::keys::{PublicKey, PublisherKey};
use crate::limits::*;
use crate::manifest::{Manifest, Problem};
use crate::name::PackageName;

/// Domain tag of package records.
pub const RECORD_TAG: &str = "peerpack/record/v1";
/// Domain tag of package index records.
pub const INDEX_TAG: &str = "peerpack/index/v1";

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

/// A signed record for one published package version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRecord {
    /// The package's manifest.
    pub manifest: Manifest,
    /// Content id of the archive.
    pub content_id: ContentId,
    /// Size of the archive in bytes.
    pub archive_size: u64,
    /// The key that signed this record.
    pub publisher: PublicKey,
    /// Sequence number chosen by the publisher (a re-signed record for the same version carries
    /// a higher one).
    pub seq: u64,
    /// When the record was signed, in Unix seconds.
    pub published_at: u64,
    /// ed25519 signature over the encoding of every field above.
    pub signature: [u8; 64],
}

/// The unsigned fields of a package record.
#[derive(Debug, Clone)]
pub struct RecordFields {
    /// The package's manifest.
    pub manifest: Manifest,
    /// Content id of the archive.
    pub content_id: ContentId,
    /// Size of the archive in bytes.
    pub archive_size: u64,
    /// Sequence number.
    pub seq: u64,
    /// Unix seconds.
    pub published_at: u64,
}

impl PackageRecord {
    /// Sign `fields` with `key`.
    pub fn sign(fields: RecordFields, key: &PublisherKey) -> Result<Self, RecordError> {
        fields.manifest.validate().map_err(RecordError::Manifest)?;
        let mut record = Self {
            manifest: fields.manifest,
            content_id: fields.content_id,
            archive_size: fields.archive_size,
            publisher: key.public(),
            seq: fields.seq,
            published_at: fields.published_at,
            signature: [0; 64],
        };
        let body = record.body();
        if body.len() + 64 > MAX_RECORD_SIZE {
            return Err(RecordError::TooLarge(body.len() + 64));
        }
        record.signature = key.sign(&body);
        Ok(record)
    }

    /// The package name.
    pub fn name(&self) -> &PackageName {
        &self.manifest.name
    }

    /// The package version.
    pub fn version(&self) -> &Version {
        &self.manifest.version
    }

    fn body(&self) -> Vec<u8> {
        let m = &self.manifest;
        let mut w = Writer::with_tag(RECORD_TAG);
        w.str(m.name.as_str());
        w.str(&m.version.to_string());
        w.str(&m.description);
        w.str(&m.license);
        w.strs(&m.authors);
        w.strs(&m.categories);
        w.strs(&m.tags);
        w.opt_str(m.homepage.as_deref());
        w.opt_str(m.repository.as_deref());
        w.opt_str(m.readme.as_deref());
        w.len(m.dependencies.len());
        for (name, req) in &m.dependencies {
            w.str(name.as_str());
            w.str(&req.to_string());
        }
        w.fixed(self.content_id.as_bytes());
        w.u64(self.archive_size);
        w.fixed(self.publisher.as_bytes());
        w.u64(self.seq);
        w.u64(self.published_at);
        w.finish()
    }

    /// The canonical wire encoding (body followed by signature).
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = self.body();
        bytes.extend_from_slice(&self.signature);
        bytes
    }

    /// BLAKE3 of [`PackageRecord::encode`].
    pub fn hash(&self) -> RecordHash {
        RecordHash::of(&self.encode())
    }

    /// Decode a record and check that its fields are valid and its encoding canonical. The
    /// signature is **not** checked: use [`PackageRecord::decode_verified`] for untrusted input.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_RECORD_SIZE {
            return Err(DecodeError::RecordTooLarge(bytes.len()));
        }
        let mut r = Reader::new(bytes);
        r.tag(RECORD_TAG)?;
        let name = decode_name(r.str("name", MAX_NAME_LEN)?, "name")?;
        let version = decode_version(r.str("version", MAX_REQ_LEN)?)?;
        let description = r.str("description", MAX_DESCRIPTION_LEN * 4)?.to_owned();
        let license = r.str("license", MAX_LICENSE_LEN * 4)?.to_owned();
        let authors = r.strs("authors", MAX_AUTHORS, MAX_AUTHOR_LEN * 4)?;
        let categories = r.strs("categories", MAX_CATEGORIES, MAX_KEYWORD_LEN)?;
        let tags = r.strs("tags", MAX_TAGS, MAX_KEYWORD_LEN)?;
        let homepage = r.opt_str("homepage", MAX_URL_LEN * 4)?.map(str::to_owned);
        let repository = r.opt_str("repository", MAX_URL_LEN * 4)?.map(str::to_owned);
        let readme = r.opt_str("readme", MAX_URL_LEN * 4)?.map(str::to_owned);
        let dep_count = r.len("dependencies", MAX_DEPENDENCIES)?;
        let mut dependencies = BTreeMap::new();
        for _ in 0..dep_count {
            let dep = decode_name(r.str("dependencies", MAX_NAME_LEN)?, "dependencies")?;
            let req_text = r.str("dependencies", MAX_REQ_LEN * 4)?;
            let req = VersionReq::parse(req_text).map_err(|e| DecodeError::Invalid {
                field: "dependencies",
                reason: format!("{req_text:?}: {e}"),
            })?;
            dependencies.insert(dep, req);
        }
        let content_id = ContentId::from_bytes(r.fixed("content_id")?);
        let archive_size = r.u64("archive_size")?;
        let publisher = decode_key(&r.fixed("publisher")?)?;
        let seq = r.u64("seq")?;
        let published_at = r.u64("published_at")?;
        let signature = r.fixed::<64>("signature")?;
        r.finish()?;

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
        manifest.validate().map_err(|p| DecodeError::Invalid {
            field: "manifest",
            reason: p.to_string(),
        })?;
        let record = Self {
            manifest,
            content_id,
            archive_size,
            publisher,
            seq,
            published_at,
            signature,
        };
        if record.encode() != bytes {
            return Err(DecodeError::NonCanonical);
        }
        Ok(record)
    }

    /// Check the signature against the record's publisher key.
    pub fn verify(&self) -> Result<(), RecordError> {
        if self.publisher.verify(&self.body(), &self.signature) {
            Ok(())
        } else {
            Err(RecordError::BadSignature {
                name: self.name().clone(),
                publisher: self.publisher,
            })
        }
    }

    /// Decode untrusted bytes and verify the signature.
    pub fn decode_verified(bytes: &[u8]) -> Result<Self, RecordError> {
        let record = Self::decode(bytes)?;
        record.verify()?;
        Ok(record)
    }

    /// Check that this is the record for `name` (and `version`, when given): a record stored
    /// under one DHT key must not describe another package.
    pub fn check_key(
        &self,
        name: &PackageName,
        version: Option<&Version>,
    ) -> Result<(), RecordError> {
        if self.name() != name {
            return Err(RecordError::WrongName {
                expected: name.clone(),
                found: self.name().clone(),
            });
        }
        match version {
            Some(v) if v != self.version() => Err(RecordError::WrongVersion {
                expected: v.clone(),
                found: self.version().clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Check that the record is signed by `owner`, the key that owns its name.
    pub fn check_owner(&self, owner: &PublicKey) -> Result<(), RecordError> {
        check_owner(self.name(), owner, &self.publisher)
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

/// One version listed in an index record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IndexEntry {
    /// The version.
    pub version: Version,
    /// Hash of that version's package record.
    pub record_hash: RecordHash,
}

/// The owner's signed list of every version of one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRecord {
    /// The package name.
    pub name: PackageName,
    /// The owner's key, which signs this record.
    pub publisher: PublicKey,
    /// Grows with every update; a lower one is a rollback.
    pub seq: u64,
    /// When the index was signed, in Unix seconds.
    pub updated_at: u64,
    /// Every version, strictly ascending.
    pub versions: Vec<IndexEntry>,
    /// ed25519 signature over the encoding of every field above.
    pub signature: [u8; 64],
}

/// How an offered index record relates to the known one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexUpdate {
    /// The offered record replaces the known one.
    Newer,
    /// The offered record is the known one.
    Same,
}

impl IndexRecord {
    /// Sign an index of `versions` (any order; duplicates keep the last) for `name`.
    pub fn sign(
        name: PackageName,
        versions: Vec<IndexEntry>,
        seq: u64,
        updated_at: u64,
        key: &PublisherKey,
    ) -> Result<Self, RecordError> {
        let mut by_version = BTreeMap::new();
        for e in versions {
            by_version.insert(e.version.clone(), e);
        }
        let mut record = Self {
            name,
            publisher: key.public(),
            seq,
            updated_at,
            versions: by_version.into_values().collect(),
            signature: [0; 64],
        };
        if record.versions.len() > MAX_INDEX_VERSIONS {
            return Err(RecordError::Decode(DecodeError::TooLong {
                field: "versions",
                len: record.versions.len(),
                max: MAX_INDEX_VERSIONS,
            }));
        }
        let body = record.body();
        if body.len() + 64 > MAX_RECORD_SIZE {
            return Err(RecordError::TooLarge(body.len() + 64));
        }
        record.signature = key.sign(&body);
        Ok(record)
    }

    fn body(&self) -> Vec<u8> {
        let mut w = Writer::with_tag(INDEX_TAG);
        w.str(self.name.as_str());
        w.fixed(self.publisher.as_bytes());
        w.u64(self.seq);
        w.u64(self.updated_at);
        w.len(self.versions.len());
        for e in &self.versions {
            w.str(&e.version.to_string());
            w.fixed(&e.record_hash.0);
        }
        w.finish()
    }

    /// The canonical wire encoding (body followed by signature).
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = self.body();
        bytes.extend_from_slice(&self.signature);
        bytes
    }

    /// BLAKE3 of [`IndexRecord::encode`].
    pub fn hash(&self) -> RecordHash {
        RecordHash::of(&self.encode())
    }

    /// Decode an index record, checking structure and canonical form but not the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_RECORD_SIZE {
            return Err(DecodeError::RecordTooLarge(bytes.len()));
        }
        let mut r = Reader::new(bytes);
        r.tag(INDEX_TAG)?;
        let name = decode_name(r.str("name", MAX_NAME_LEN)?, "name")?;
        let publisher = decode_key(&r.fixed("publisher")?)?;
        let seq = r.u64("seq")?;
        let updated_at = r.u64("updated_at")?;
        let n = r.len("versions", MAX_INDEX_VERSIONS)?;
        let mut versions: Vec<IndexEntry> = Vec::with_capacity(n);
        for _ in 0..n {
            let version = decode_version(r.str("versions", MAX_REQ_LEN)?)?;
            let record_hash = RecordHash(r.fixed("versions")?);
            if versions.last().is_some_and(|prev| prev.version >= version) {
                return Err(DecodeError::Invalid {
                    field: "versions",
                    reason: "versions are not strictly ascending".into(),
                });
            }
            versions.push(IndexEntry {
                version,
                record_hash,
            });
        }
        let signature = r.fixed::<64>("signature")?;
        r.finish()?;
        let record = Self {
            name,
            publisher,
            seq,
            updated_at,
            versions,
            signature,
        };
        if record.encode() != bytes {
            return Err(DecodeError::NonCanonical);
        }
        Ok(record)
    }

    /// Check the signature against the record's publisher key.
    pub fn verify(&self) -> Result<(), RecordError> {
        if self.publisher.verify(&self.body(), &self.signature) {
            Ok(())
        } else {
            Err(RecordError::BadSignature {
                name: self.name.clone(),
                publisher: self.publisher,
            })
        }
    }

    /// Decode untrusted bytes and verify the signature.
    pub fn decode_verified(bytes: &[u8]) -> Result<Self, RecordError> {
        let record = Self::decode(bytes)?;
        record.verify()?;
        Ok(record)
    }

    /// Decide whether `offered` may replace `self` (the known index for the same name): same
    /// name, same owner, and a higher sequence number, or exactly the same record.
    pub fn check_successor(&self, offered: &IndexRecord) -> Result<IndexUpdate, RecordError> {
        if offered.name != self.name {
            return Err(RecordError::WrongName {
                expected: self.name.clone(),
                found: offered.name.clone(),
            });
        }
        check_owner(&self.name, &self.publisher, &offered.publisher)?;
        match offered.seq.cmp(&self.seq) {
            std::cmp::Ordering::Greater => Ok(IndexUpdate::Newer),
            std::cmp::Ordering::Equal if offered == self => Ok(IndexUpdate::Same),
            std::cmp::Ordering::Equal => Err(RecordError::Equivocation {
                name: self.name.clone(),
                seq: self.seq,
            }),
            std::cmp::Ordering::Less => Err(RecordError::Rollback {
                name: self.name.clone(),
                current: self.seq,
                offered: offered.seq,
            }),
        }
    }

    /// The entry for `version`, if listed.
    pub fn entry(&self, version: &Version) -> Option<&IndexEntry> {
        self.versions.iter().find(|e| &e.version == version)
    }
}
