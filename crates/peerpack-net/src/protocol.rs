//! Protocol identifiers and DHT key formats (see docs/PROTOCOL.md).

use peerpack_core::{PackageName, Version};

/// Kademlia protocol name.
pub const KAD_PROTOCOL: &str = "/peerpack/kad/1.0.0";
/// Identify protocol version string.
pub const IDENTIFY_PROTOCOL: &str = "/peerpack/id/1.0.0";
/// Gossipsub topic for package announcements.
pub const ANNOUNCE_TOPIC: &str = "peerpack/announce/1";

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
    fn keys_are_namespaced() {
        let name = PackageName::new("rust-cli").unwrap();
        assert_eq!(index_key(&name), b"/peerpack/pkg/rust-cli");
        assert_eq!(
            record_key(&name, &Version::new(1, 2, 3)),
            b"/peerpack/pkg/rust-cli/1.2.3"
        );
    }
}
