-- peerpack store, schema version 9: the search index follows the catalogue by change number.
--
-- Every change to a name's versions adds a row here, in the same transaction as the change
-- (the triggers below), so no write path can forget it. The search index keeps, in its commit,
-- the highest `seq` it has applied; at open and after every write it applies the names
-- changed since, then the applied rows are deleted. A change lost in a crash between the
-- SQLite commit and the index commit is applied at the next open. AUTOINCREMENT keeps `seq`
-- growing even when every row has been deleted.
CREATE TABLE search_changes (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    name  TEXT NOT NULL
) STRICT;

CREATE TRIGGER versions_insert_search AFTER INSERT ON versions
BEGIN
    INSERT INTO search_changes (name) VALUES (NEW.name);
END;

CREATE TRIGGER versions_delete_search AFTER DELETE ON versions
BEGIN
    INSERT INTO search_changes (name) VALUES (OLD.name);
END;

CREATE TRIGGER versions_update_search AFTER UPDATE ON versions
BEGIN
    INSERT INTO search_changes (name) VALUES (OLD.name);
    INSERT INTO search_changes (name) SELECT NEW.name WHERE NEW.name <> OLD.name;
END;

-- A new index record changes what the DHT serves for the name: the same feed tells the node's
-- DHT cache to forget its copy (re-indexing the name is harmless).
CREATE TRIGGER index_records_insert_search AFTER INSERT ON index_records
BEGIN
    INSERT INTO search_changes (name) VALUES (NEW.name);
END;

CREATE TRIGGER index_records_update_search AFTER UPDATE ON index_records
BEGIN
    INSERT INTO search_changes (name) VALUES (NEW.name);
END;

CREATE TRIGGER index_records_delete_search AFTER DELETE ON index_records
BEGIN
    INSERT INTO search_changes (name) VALUES (OLD.name);
END;
