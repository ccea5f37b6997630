-- peerpack store, schema version 11: each version's dependencies, by name, so that a package
-- page can list its dependents. Written with the version's row from its signed record (the
-- record stays the truth; this is an index over it). Opening an older store fills it from the
-- stored records once.
CREATE TABLE dependencies (
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    dependency  TEXT NOT NULL,
    requirement TEXT NOT NULL,
    PRIMARY KEY (name, version, dependency),
    FOREIGN KEY (name, version) REFERENCES versions(name, version) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX dependencies_by_dependency ON dependencies(dependency);
