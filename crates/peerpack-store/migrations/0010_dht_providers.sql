-- peerpack store, schema version 10: provider records other peers asked this node to hold in
-- the DHT, with their expiry (Unix seconds), so that a restarted node still answers for them.
-- `key` is the DHT key (a content id as a BLAKE3 multihash), `provider` the peer id's bytes,
-- `addresses` the provider's multiaddrs, each as a 2-byte big-endian length and its bytes.
CREATE TABLE dht_providers (
    key        BLOB NOT NULL,
    provider   BLOB NOT NULL,
    addresses  BLOB NOT NULL,
    expires    INTEGER NOT NULL,
    PRIMARY KEY (key, provider)
) STRICT, WITHOUT ROWID;
CREATE INDEX dht_providers_by_expiry ON dht_providers(expires);
