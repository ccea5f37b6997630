-- peerpack store, schema version 8: what this node mirrors. Every version of a mirrored name,
-- and of every name a mirrored owner key owns, is fetched and provided, now and as new versions
-- arrive, within the cache quota; garbage collection keeps those archives.
CREATE TABLE mirror_names (
    name      TEXT PRIMARY KEY,
    added_at  INTEGER NOT NULL
) STRICT;
CREATE TABLE mirror_owners (
    owner     BLOB PRIMARY KEY CHECK (length(owner) = 32),
    added_at  INTEGER NOT NULL
) STRICT;
