-- peerpack store, schema version 6: archives that match their signed content id but that the
-- extractor refused. Their records are hidden from search and never installed again here.
CREATE TABLE unsafe_archives (
    content_id  BLOB PRIMARY KEY CHECK (length(content_id) = 32),
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    publisher   BLOB NOT NULL CHECK (length(publisher) = 32),
    reason      TEXT NOT NULL,
    flagged_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX unsafe_archives_by_publisher ON unsafe_archives(publisher);
