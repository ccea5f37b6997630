-- peerpack store, schema version 3: downloads, installs, pins and the archive cache.

-- What each peer delivered when this node downloaded from it.
ALTER TABLE peers ADD COLUMN downloads_ok      INTEGER NOT NULL DEFAULT 0;  -- pieces delivered and verified
ALTER TABLE peers ADD COLUMN downloads_failed  INTEGER NOT NULL DEFAULT 0;  -- requests that failed or timed out
ALTER TABLE peers ADD COLUMN bytes_served      INTEGER NOT NULL DEFAULT 0;  -- verified bytes received from it
ALTER TABLE peers ADD COLUMN response_ms       REAL;                        -- EWMA of piece response time
ALTER TABLE peers ADD COLUMN invalid_data      INTEGER NOT NULL DEFAULT 0;  -- pieces or outlines that failed verification

-- Archives in the blob store, for the cache quota: size and when last used (served,
-- installed, published).
CREATE TABLE blob_use (
    content_id  BLOB PRIMARY KEY CHECK (length(content_id) = 32),
    size        INTEGER NOT NULL,
    added_at    INTEGER NOT NULL,
    last_used   INTEGER NOT NULL
) STRICT;

-- Where packages were installed. An install whose directory is gone no longer keeps its
-- archive from garbage collection.
CREATE TABLE installs (
    path          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    content_id    BLOB NOT NULL CHECK (length(content_id) = 32),
    installed_at  INTEGER NOT NULL
) STRICT;

-- Package versions whose archives garbage collection must keep.
CREATE TABLE pins (
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    pinned_at   INTEGER NOT NULL,
    PRIMARY KEY (name, version)
) STRICT;
