-- peerpack store, schema version 7: the catalogue summary that sync peers ask for, kept up to
-- date by every write (count of versions, XOR of their record hashes), so that answering is a
-- read of one row. The row is filled from `versions` when the store opens without it.
CREATE TABLE catalogue_summary (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    count   INTEGER NOT NULL,
    digest  BLOB NOT NULL CHECK (length(digest) = 32)
) STRICT;
