//! Archives flagged unsafe: they match their content id, but the extractor refused them.

use peerpack_core::{ContentId, PackageRecord, PublicKey};
use rusqlite::{OptionalExtension, params};

use super::{Db, Error, now};

impl Db {
    /// Flag the archive of `record` as unsafe: it matches its content id, but the extractor
    /// refused it for `reason`.
    pub fn flag_unsafe(&mut self, record: &PackageRecord, reason: &str) -> Result<(), Error> {
        self.conn
            .execute(
                "INSERT INTO unsafe_archives (content_id, name, version, publisher, reason, flagged_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(content_id) DO NOTHING",
                params![
                    record.content_id.as_bytes().as_slice(),
                    record.name().as_str(),
                    record.version().to_string(),
                    record.publisher.as_bytes().as_slice(),
                    reason,
                    now()
                ],
            )
            .map_err(self.sql_err())?;
        Ok(())
    }

    /// Why the archive `id` was flagged unsafe, if it was.
    pub fn unsafe_reason(&self, id: &ContentId) -> Result<Option<String>, Error> {
        self.conn
            .prepare_cached("SELECT reason FROM unsafe_archives WHERE content_id = ?1")
            .and_then(|mut s| {
                s.query_row([id.as_bytes().as_slice()], |r| r.get(0))
                    .optional()
            })
            .map_err(self.sql_err())
    }

    /// Every archive flagged unsafe.
    pub fn unsafe_archives(&self) -> Result<Vec<ContentId>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT content_id FROM unsafe_archives")
            .map_err(self.sql_err())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(self.sql_err())?;
        let mut out = Vec::new();
        for row in rows {
            let bytes = row.map_err(self.sql_err())?;
            if let Ok(b) = <[u8; 32]>::try_from(bytes.as_slice()) {
                out.push(ContentId::from_bytes(b));
            }
        }
        Ok(out)
    }

    /// How many unsafe archives `publisher` signed.
    pub fn unsafe_count(&self, publisher: &PublicKey) -> Result<u64, Error> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM unsafe_archives WHERE publisher = ?1",
                [publisher.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .map_err(self.sql_err())?;
        Ok(n.max(0) as u64)
    }
}
