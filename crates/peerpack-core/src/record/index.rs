//! The package index record: the owner's signed list of every version of one name.

use super::*;

/// One version listed in an index record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IndexEntry {
    /// The version.
    pub version: Version,
    /// Hash of that version's package record.
    pub record_hash: RecordHash,
    /// Yanked by its owner, with the reason (possibly empty): resolvers skip it unless a lock
    /// file names it.
    pub yanked: Option<String>,
    /// Deprecated by its owner, with a message for those who install it.
    pub deprecated: Option<String>,
}

impl IndexEntry {
    /// A listed version, neither yanked nor deprecated.
    pub fn new(version: Version, record_hash: RecordHash) -> Self {
        Self {
            version,
            record_hash,
            yanked: None,
            deprecated: None,
        }
    }

    fn has_notice(&self) -> bool {
        self.yanked.is_some() || self.deprecated.is_some()
    }
}

/// Check a yank reason or deprecation message.
fn check_notice(field: &'static str, text: &str) -> Result<(), DecodeError> {
    if text.chars().count() > MAX_NOTICE_LEN {
        return Err(DecodeError::Invalid {
            field,
            reason: format!("longer than {MAX_NOTICE_LEN} characters"),
        });
    }
    if text.chars().any(char::is_control) {
        return Err(DecodeError::Invalid {
            field,
            reason: "contains a control character".into(),
        });
    }
    Ok(())
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
        for e in &record.versions {
            for (field, text) in [("yanked", &e.yanked), ("deprecated", &e.deprecated)] {
                if let Some(t) = text {
                    check_notice(field, t).map_err(RecordError::Decode)?;
                }
            }
        }
        let body = record.body();
        if body.len() + 64 > MAX_RECORD_SIZE {
            return Err(RecordError::TooLarge(body.len() + 64));
        }
        record.signature = key.sign(&body);
        Ok(record)
    }

    /// Whether some version is yanked or deprecated: then the record takes the second form.
    fn has_notices(&self) -> bool {
        self.versions.iter().any(IndexEntry::has_notice)
    }

    fn body(&self) -> Vec<u8> {
        let v2 = self.has_notices();
        let mut w = Writer::with_tag(if v2 { INDEX_TAG_V2 } else { INDEX_TAG });
        w.str(self.name.as_str());
        w.fixed(self.publisher.as_bytes());
        w.u64(self.seq);
        w.u64(self.updated_at);
        w.len(self.versions.len());
        for e in &self.versions {
            w.str(&e.version.to_string());
            w.fixed(&e.record_hash.0);
            if v2 {
                w.opt_str(e.yanked.as_deref());
                w.opt_str(e.deprecated.as_deref());
            }
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
        // Both forms start with a tag of the same length; try the first, then the second.
        let v2 = Reader::new(bytes).tag(INDEX_TAG).is_err();
        r.tag(if v2 { INDEX_TAG_V2 } else { INDEX_TAG })?;
        let name = decode_name(r.str("name", MAX_NAME_LEN)?, "name")?;
        let publisher = decode_key(&r.fixed("publisher")?)?;
        let seq = r.u64("seq")?;
        let updated_at = r.u64("updated_at")?;
        let n = r.len("versions", MAX_INDEX_VERSIONS)?;
        let mut versions: Vec<IndexEntry> = Vec::with_capacity(n);
        for _ in 0..n {
            let version = decode_version(r.str("versions", MAX_REQ_LEN)?)?;
            let record_hash = RecordHash(r.fixed("versions")?);
            let mut entry = IndexEntry::new(version, record_hash);
            if v2 {
                entry.yanked = r.opt_str("yanked", MAX_NOTICE_LEN * 4)?.map(str::to_owned);
                entry.deprecated = r
                    .opt_str("deprecated", MAX_NOTICE_LEN * 4)?
                    .map(str::to_owned);
                for (field, text) in [("yanked", &entry.yanked), ("deprecated", &entry.deprecated)]
                {
                    if let Some(t) = text {
                        check_notice(field, t)?;
                    }
                }
            }
            if versions
                .last()
                .is_some_and(|prev: &IndexEntry| prev.version >= entry.version)
            {
                return Err(DecodeError::Invalid {
                    field: "versions",
                    reason: "versions are not strictly ascending".into(),
                });
            }
            versions.push(entry);
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
