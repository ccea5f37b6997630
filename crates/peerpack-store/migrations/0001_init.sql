-- peerpack store, schema version 1.
-- Every row that holds a record holds its canonical bytes; the other columns are
-- indexes over them, written in the same transaction.

-- One row per package name: the key that first published it owns it (trust on first use).
CREATE TABLE packages (
    name        TEXT PRIMARY KEY,
    owner       BLOB NOT NULL CHECK (length(owner) = 32),
    first_seen  INTEGER NOT NULL,
    pinned      INTEGER NOT NULL DEFAULT 0
) STRICT;

-- One row per published version, with its signed package record.
CREATE TABLE versions (
    name          TEXT NOT NULL REFERENCES packages(name),
    version       TEXT NOT NULL,
    content_id    BLOB NOT NULL CHECK (length(content_id) = 32),
    archive_size  INTEGER NOT NULL,
    published_at  INTEGER NOT NULL,
    record_hash   BLOB NOT NULL CHECK (length(record_hash) = 32),
    record        BLOB NOT NULL,
    received_at   INTEGER NOT NULL,
    PRIMARY KEY (name, version)
) STRICT;
CREATE INDEX versions_by_content_id ON versions(content_id);

-- The newest signed index record known for each name.
CREATE TABLE index_records (
    name         TEXT PRIMARY KEY REFERENCES packages(name),
    seq          INTEGER NOT NULL,
    record       BLOB NOT NULL,
    received_at  INTEGER NOT NULL
) STRICT;
