//! The durable state behind the network's Kademlia store: the records this node serves are
//! the catalogue's own rows, read by key; the provider records other peers add are kept in
//! `dht_providers` with their expiry. See `peerpack_net::dht_store`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerpack_net::p2p::{Multiaddr, PeerId};
use peerpack_net::{DhtBacking, StoredProvider};
use peerpack_store::dht::{DhtReader, DhtWriter, ProviderRow};

use crate::ingest::{DhtKey, parse_key};

/// [`DhtBacking`] over the node's store.
pub struct StoreBacking {
    reader: DhtReader,
    writer: DhtWriter,
    provided: Vec<Vec<u8>>,
}

impl StoreBacking {
    /// A backing reading and writing the store of the data directory `dir`, which provides
    /// the keys `provided` (its archives).
    pub fn open(
        dir: &std::path::Path,
        provided: Vec<Vec<u8>>,
    ) -> Result<(Self, DhtWriter), peerpack_store::Error> {
        let writer = DhtWriter::spawn(dir)?;
        Ok((
            Self {
                reader: DhtReader::open(dir)?,
                writer: writer.clone(),
                provided,
            },
            writer,
        ))
    }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn from_unix(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

impl DhtBacking for StoreBacking {
    fn record(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let found = match parse_key(key)? {
            DhtKey::Record(name, version) => self
                .reader
                .package_record(name.as_str(), &version.to_string()),
            DhtKey::Index(name) => self.reader.index_record(name.as_str()),
            DhtKey::Curator(curator) => self.reader.curator_list(curator.as_bytes()),
        };
        found.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read a DHT record from the store");
            None
        })
    }

    fn providers(&mut self, key: &[u8]) -> Vec<StoredProvider> {
        let rows = self
            .reader
            .providers(key, unix(SystemTime::now()))
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not read provider records from the store");
                Vec::new()
            });
        rows.into_iter()
            .filter_map(|r| {
                Some(StoredProvider {
                    provider: PeerId::from_bytes(&r.provider).ok()?,
                    addresses: r
                        .addresses
                        .into_iter()
                        .filter_map(|a| Multiaddr::try_from(a).ok())
                        .collect(),
                    expires: from_unix(r.expires),
                })
            })
            .collect()
    }

    fn add_provider(&mut self, key: &[u8], record: StoredProvider) {
        self.writer.add(
            key,
            ProviderRow {
                provider: record.provider.to_bytes(),
                addresses: record.addresses.iter().map(|a| a.to_vec()).collect(),
                expires: unix(record.expires),
            },
        );
    }

    fn remove_provider(&mut self, key: &[u8], provider: &PeerId) {
        self.writer.remove(key, &provider.to_bytes());
    }

    fn provided(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.provided)
    }

    fn held(&mut self) -> u64 {
        self.writer.held()
    }
}
