-- peerpack store, schema version 2: peers and who provides what.

-- What this node knows of each peer it has met; reputation inputs live here.
CREATE TABLE peers (
    peer_id           TEXT PRIMARY KEY,
    addresses         TEXT NOT NULL DEFAULT '[]',   -- JSON array of multiaddrs
    agent             TEXT NOT NULL DEFAULT '',
    protocol_version  TEXT NOT NULL DEFAULT '',
    first_seen        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL,
    connections       INTEGER NOT NULL DEFAULT 0,
    ping_ms           REAL,
    valid_records     INTEGER NOT NULL DEFAULT 0,
    invalid_messages  INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Peers known to hold an archive: the publisher of a gossip announcement, DHT providers,
-- and this node itself ('self') for what it published.
CREATE TABLE providers (
    content_id  BLOB NOT NULL CHECK (length(content_id) = 32),
    peer_id     TEXT NOT NULL,
    seen_at     INTEGER NOT NULL,
    PRIMARY KEY (content_id, peer_id)
) STRICT;
