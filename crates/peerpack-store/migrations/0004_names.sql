-- peerpack store, schema version 4: who owns a name, and who else claims it.
--
-- packages.owner is the owner this node decided on: a trusted owner, else one a trusted curator
-- vouches for, else the first key seen (trust on first use). Only the owner's records live in
-- `versions` and `index_records`; valid claims by other keys are kept in `claims`.

-- Owners pinned by the user (`peerpack trust NAME KEY`): they decide above everything else.
CREATE TABLE trusted_owners (
    name        TEXT PRIMARY KEY,
    owner       BLOB NOT NULL CHECK (length(owner) = 32),
    trusted_at  INTEGER NOT NULL
) STRICT;

-- Signed curator lists, the newest per curator. Only curators named in the configuration
-- decide anything.
CREATE TABLE curator_lists (
    curator      BLOB PRIMARY KEY CHECK (length(curator) = 32),
    seq          INTEGER NOT NULL,
    record       BLOB NOT NULL,
    received_at  INTEGER NOT NULL
) STRICT;

-- The entries of those lists, for look-ups by name.
CREATE TABLE curator_entries (
    curator  BLOB NOT NULL REFERENCES curator_lists(curator) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    owner    BLOB NOT NULL CHECK (length(owner) = 32),
    PRIMARY KEY (curator, name)
) STRICT;
CREATE INDEX curator_entries_by_name ON curator_entries(name);

-- Valid claims to a name by keys other than its owner here: disputed claims when the name has
-- an owner, the claimants when it is contested. Bounded per name.
CREATE TABLE claims (
    name        TEXT NOT NULL,
    publisher   BLOB NOT NULL CHECK (length(publisher) = 32),
    seq         INTEGER NOT NULL,                 -- highest index record seq seen (0: none)
    versions    TEXT NOT NULL DEFAULT '[]',       -- JSON array of the versions it claims
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    PRIMARY KEY (name, publisher)
) STRICT;

-- Peers that served each claim.
CREATE TABLE claim_peers (
    name       TEXT NOT NULL,
    publisher  BLOB NOT NULL,
    peer_id    TEXT NOT NULL,
    seen_at    INTEGER NOT NULL,
    PRIMARY KEY (name, publisher, peer_id),
    FOREIGN KEY (name, publisher) REFERENCES claims(name, publisher) ON DELETE CASCADE
) STRICT;

-- Names with no owner that were seen claimed by several keys at once: nothing is installed
-- under them until the user chooses (`trust`, `install --owner`) or a trusted curator does.
CREATE TABLE contested (
    name   TEXT PRIMARY KEY,
    since  INTEGER NOT NULL
) STRICT;
