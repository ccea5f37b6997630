//! Signed curator lists.
//!
//! A **curator** vouches for who owns which names: its list maps package names to owner keys,
//! signed by the curator's ed25519 key, with a sequence number that only grows. A node trusts
//! the curators its operator named in the configuration; a list signed by any other key decides
//! nothing there. Between a pinned owner (`peerpack trust`) and the owner a node recorded first,
//! a trusted curator's word decides who owns a name, and so settles a contested one.
//!
//! Fields, in order: tag `peerpack/curator/v1`, curator key (32 bytes), seq (u64), updated_at
//! (u64, Unix seconds), entries (list of name, owner key (32 bytes); strictly ascending by name,
//! at most [`MAX_CURATOR_ENTRIES`]), signature (64 bytes) over everything before it.

use std::collections::BTreeMap;

use crate::encoding::{DecodeError, Reader, Writer};
use crate::keys::{PublicKey, PublisherKey};
use crate::limits::{MAX_CURATOR_ENTRIES, MAX_NAME_LEN, MAX_RECORD_SIZE};
use crate::name::PackageName;
use crate::record::{RecordError, RecordHash};

/// Domain tag of curator lists.
pub const CURATOR_TAG: &str = "peerpack/curator/v1";

/// A curator's signed list of name owners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CuratorList {
    /// The curator's key, which signs the list.
    pub curator: PublicKey,
    /// Grows with every update; a lower one is a rollback.
    pub seq: u64,
    /// When the list was signed, in Unix seconds.
    pub updated_at: u64,
    /// Name to owner key, in name order.
    pub entries: BTreeMap<PackageName, PublicKey>,
    /// ed25519 signature over the encoding of every field above.
    pub signature: [u8; 64],
}

impl CuratorList {
    /// Sign a list of `entries` with `key`.
    pub fn sign(
        entries: BTreeMap<PackageName, PublicKey>,
        seq: u64,
        updated_at: u64,
        key: &PublisherKey,
    ) -> Result<Self, RecordError> {
        if entries.len() > MAX_CURATOR_ENTRIES {
            return Err(RecordError::Decode(DecodeError::TooLong {
                field: "entries",
                len: entries.len(),
                max: MAX_CURATOR_ENTRIES,
            }));
        }
        let mut list = Self {
            curator: key.public(),
            seq,
            updated_at,
            entries,
            signature: [0; 64],
        };
        let body = list.body();
        if body.len() + 64 > MAX_RECORD_SIZE {
            return Err(RecordError::TooLarge(body.len() + 64));
        }
        list.signature = key.sign(&body);
        Ok(list)
    }

    fn body(&self) -> Vec<u8> {
        let mut w = Writer::with_tag(CURATOR_TAG);
        w.fixed(self.curator.as_bytes());
        w.u64(self.seq);
        w.u64(self.updated_at);
        w.len(self.entries.len());
        for (name, owner) in &self.entries {
            w.str(name.as_str());
            w.fixed(owner.as_bytes());
        }
        w.finish()
    }

    /// The canonical wire encoding (body followed by signature).
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = self.body();
        bytes.extend_from_slice(&self.signature);
        bytes
    }

    /// BLAKE3 of [`CuratorList::encode`].
    pub fn hash(&self) -> RecordHash {
        RecordHash::of(&self.encode())
    }

    /// Decode a curator list, checking structure and canonical form but not the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_RECORD_SIZE {
            return Err(DecodeError::RecordTooLarge(bytes.len()));
        }
        let mut r = Reader::new(bytes);
        r.tag(CURATOR_TAG)?;
        let curator = key(&r.fixed("curator")?, "curator")?;
        let seq = r.u64("seq")?;
        let updated_at = r.u64("updated_at")?;
        let n = r.len("entries", MAX_CURATOR_ENTRIES)?;
        let mut entries = BTreeMap::new();
        let mut last: Option<PackageName> = None;
        for _ in 0..n {
            let text = r.str("entries", MAX_NAME_LEN)?;
            let name = PackageName::new(text).map_err(|e| DecodeError::Invalid {
                field: "entries",
                reason: format!("{text:?}: {e}"),
            })?;
            let owner = key(&r.fixed("entries")?, "entries")?;
            if last.as_ref().is_some_and(|prev| prev >= &name) {
                return Err(DecodeError::Invalid {
                    field: "entries",
                    reason: "names are not strictly ascending".into(),
                });
            }
            last = Some(name.clone());
            entries.insert(name, owner);
        }
        let signature = r.fixed::<64>("signature")?;
        r.finish()?;
        let list = Self {
            curator,
            seq,
            updated_at,
            entries,
            signature,
        };
        if list.encode() != bytes {
            return Err(DecodeError::NonCanonical);
        }
        Ok(list)
    }

    /// Check the signature against the curator key.
    pub fn verify(&self) -> Result<(), RecordError> {
        if self.curator.verify(&self.body(), &self.signature) {
            Ok(())
        } else {
            Err(RecordError::BadCuratorSignature {
                curator: self.curator,
            })
        }
    }

    /// Decode untrusted bytes and verify the signature.
    pub fn decode_verified(bytes: &[u8]) -> Result<Self, RecordError> {
        let list = Self::decode(bytes)?;
        list.verify()?;
        Ok(list)
    }

    /// The owner this list names for `name`.
    pub fn owner_of(&self, name: &PackageName) -> Option<&PublicKey> {
        self.entries.get(name)
    }
}

fn key(bytes: &[u8; 32], field: &'static str) -> Result<PublicKey, DecodeError> {
    PublicKey::from_bytes(bytes).map_err(|e| DecodeError::Invalid {
        field,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn name(s: &str) -> PackageName {
        PackageName::new(s).unwrap()
    }

    fn list(seq: u64) -> CuratorList {
        let owner = PublisherKey::from_secret_bytes(&[2; 32]).public();
        let entries = [(name("rust-cli"), owner), (name("axum-service"), owner)]
            .into_iter()
            .collect();
        CuratorList::sign(entries, seq, 7, &PublisherKey::from_secret_bytes(&[1; 32])).unwrap()
    }

    #[test]
    fn round_trips_and_verifies() {
        let l = list(3);
        let bytes = l.encode();
        assert_eq!(CuratorList::decode_verified(&bytes).unwrap(), l);
        assert_eq!(
            l.owner_of(&name("rust-cli")),
            Some(&PublisherKey::from_secret_bytes(&[2; 32]).public())
        );
        assert_eq!(l.owner_of(&name("other")), None);
    }

    #[test]
    fn a_changed_entry_breaks_the_signature() {
        let mut l = list(1);
        let thief = PublisherKey::from_secret_bytes(&[9; 32]).public();
        l.entries.insert(name("rust-cli"), thief);
        let err = CuratorList::decode_verified(&l.encode()).unwrap_err();
        assert!(
            matches!(err, RecordError::BadCuratorSignature { .. }),
            "{err}"
        );
    }

    #[test]
    fn other_record_kinds_and_junk_are_refused() {
        let l = list(1);
        let mut bytes = l.encode();
        bytes.push(0);
        assert!(matches!(
            CuratorList::decode(&bytes),
            Err(DecodeError::TrailingBytes(1))
        ));
        assert!(matches!(
            CuratorList::decode(b"\0\0\0\x12peerpack/record/v1"),
            Err(DecodeError::BadTag(_))
        ));
    }

    #[test]
    fn too_many_entries_are_refused_when_signing() {
        let owner = PublisherKey::from_secret_bytes(&[2; 32]).public();
        let entries = (0..=MAX_CURATOR_ENTRIES)
            .map(|i| (name(&format!("pkg-{i}")), owner))
            .collect();
        assert!(
            CuratorList::sign(entries, 1, 1, &PublisherKey::from_secret_bytes(&[1; 32])).is_err()
        );
    }
}
