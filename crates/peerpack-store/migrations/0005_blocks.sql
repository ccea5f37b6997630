-- peerpack store, schema version 5: peers blocked for misbehaving, until when.
ALTER TABLE peers ADD COLUMN blocked_until INTEGER NOT NULL DEFAULT 0;  -- Unix seconds; 0: not blocked
