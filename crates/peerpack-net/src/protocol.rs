//! Protocol identifiers and DHT key formats (see docs/PROTOCOL.md).

use peerpack_core::{ContentId, PackageName, Version};

/// Kademlia protocol name.
pub const KAD_PROTOCOL: &str = "/peerpack/kad/1.0.0";
/// Identify's `protocolVersion` string (Identify itself runs on the standard `/ipfs/id/1.0.0`
/// and `/ipfs/id/push/1.0.0` protocols).
pub const IDENTIFY_PROTOCOL: &str = "/peerpack/id/1.0.0";
/// Gossipsub topic for package announcements.
pub const ANNOUNCE_TOPIC: &str = "peerpack/announce/1";
/// Gossipsub topic for curator lists.
pub const CURATOR_TOPIC: &str = "peerpack/curators/1";
/// Gossipsub topic for owners' amended index records (yanks, deprecations). A topic of its
/// own, so that a node that does not know it never receives one.
pub const INDEX_TOPIC: &str = "peerpack/indexes/1";

/// The gossip topics peerpack uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// [`ANNOUNCE_TOPIC`]: package records.
    Packages,
    /// [`CURATOR_TOPIC`]: curator lists.
    Curators,
    /// [`INDEX_TOPIC`]: package index records.
    Indexes,
}

impl Topic {
    /// The topic's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Packages => ANNOUNCE_TOPIC,
            Self::Curators => CURATOR_TOPIC,
            Self::Indexes => INDEX_TOPIC,
        }
    }
}

/// DHT key of a curator's list: `/peerpack/curator/<64 hex digits of the key>`.
pub fn curator_key(curator: &peerpack_core::PublicKey) -> Vec<u8> {
    format!("/peerpack/curator/{}", hex_of(curator.as_bytes())).into_bytes()
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The multihash prefix of a BLAKE3 digest: multicodec `blake3` (0x1e), then the digest
/// length (32).
pub const BLAKE3_MULTIHASH_PREFIX: [u8; 2] = [0x1e, 0x20];

/// DHT key of an archive's provider records: the content id as a BLAKE3 multihash
/// (`0x1e 0x20` then the 32 hash bytes), so that standard `findProviders` APIs, which take a
/// CID or multihash, reach it.
pub fn provider_key(id: &ContentId) -> Vec<u8> {
    let mut key = Vec::with_capacity(34);
    key.extend_from_slice(&BLAKE3_MULTIHASH_PREFIX);
    key.extend_from_slice(id.as_bytes());
    key
}

/// Whether `key` has the form of a [`provider_key`] (34 bytes, BLAKE3 multihash prefix).
pub fn is_provider_key(key: &[u8]) -> bool {
    key.len() == 34 && key.starts_with(&BLAKE3_MULTIHASH_PREFIX)
}

/// DHT key of a name's index record: `/peerpack/pkg/<name>`.
pub fn index_key(name: &PackageName) -> Vec<u8> {
    format!("/peerpack/pkg/{name}").into_bytes()
}

/// DHT key of one version's package record: `/peerpack/pkg/<name>/<version>`.
pub fn record_key(name: &PackageName, version: &Version) -> Vec<u8> {
    format!("/peerpack/pkg/{name}/{version}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_keys_are_blake3_multihashes() {
        let id = ContentId::of(b"an archive");
        let key = provider_key(&id);
        assert_eq!(key.len(), 34);
        assert_eq!(&key[..2], &[0x1e, 0x20]);
        assert_eq!(&key[2..], id.as_bytes());
        assert!(is_provider_key(&key));
        assert!(!is_provider_key(id.as_bytes()));
        let mut sha256 = key.clone();
        sha256[0] = 0x12;
        assert!(!is_provider_key(&sha256));
        assert!(!is_provider_key(&key[..33]));
    }

    #[test]
    fn keys_are_namespaced() {
        let name = PackageName::new("rust-cli").unwrap();
        assert_eq!(index_key(&name), b"/peerpack/pkg/rust-cli");
        assert_eq!(
            record_key(&name, &Version::new(1, 2, 3)),
            b"/peerpack/pkg/rust-cli/1.2.3"
        );
        let curator = peerpack_core::PublisherKey::from_secret_bytes(&[1; 32]).public();
        let key = String::from_utf8(curator_key(&curator)).unwrap();
        assert_eq!(
            key,
            format!(
                "/peerpack/curator/{}",
                curator.to_string().trim_start_matches("ed25519:")
            )
        );
    }
}
