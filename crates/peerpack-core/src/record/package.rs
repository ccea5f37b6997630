//! The package record: one published version, signed by its publisher.

use super::*;

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
