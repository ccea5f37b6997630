//! Peers this node has met and the archives they are known to provide.
//!
//! Peer ids are stored as their text form: this crate knows nothing of libp2p.

use std::path::Path;

use peerpack_core::ContentId;
use rusqlite::{Connection, OptionalExtension, params};

use super::{Db, Error, now};

/// What the store keeps about one peer.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PeerRow {
    /// The peer id (text form).
    pub peer_id: String,
    /// Addresses it listens on, as far as we know.
    pub addresses: Vec<String>,
    /// Identify agent version.
    pub agent: String,
    /// Identify protocol version.
    pub protocol_version: String,
    /// First contact, Unix seconds.
    pub first_seen: i64,
    /// Last contact, Unix seconds.
    pub last_seen: i64,
    /// Connections opened.
    pub connections: i64,
    /// Latest ping round trip, milliseconds.
    pub ping_ms: Option<f64>,
    /// Valid records received from it.
    pub valid_records: i64,
    /// Invalid messages or records received from it.
    pub invalid_messages: i64,
    /// Archive pieces it delivered that verified.
    pub downloads_ok: i64,
    /// Requests to it that failed, timed out or were refused.
    pub downloads_failed: i64,
    /// Verified bytes received from it.
    pub bytes_served: i64,
    /// Moving average of its piece response time, milliseconds.
    pub response_ms: Option<f64>,
    /// Pieces or outlines from it that failed verification.
    pub invalid_data: i64,
    /// Blocked until then (Unix seconds) for misbehaving; 0 when not blocked.
    #[serde(default)]
    pub blocked_until: i64,
}

pub(crate) fn save(conn: &Connection, path: &Path, peers: &[PeerRow]) -> Result<(), Error> {
    let err = super::sqlite(path);
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO peers (peer_id, addresses, agent, protocol_version, first_seen, last_seen,
                connections, ping_ms, valid_records, invalid_messages, downloads_ok,
                downloads_failed, bytes_served, response_ms, invalid_data, blocked_until)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
             ON CONFLICT(peer_id) DO UPDATE SET addresses = excluded.addresses,
                agent = excluded.agent, protocol_version = excluded.protocol_version,
                last_seen = excluded.last_seen, connections = excluded.connections,
                ping_ms = excluded.ping_ms, valid_records = excluded.valid_records,
                invalid_messages = excluded.invalid_messages,
                downloads_ok = excluded.downloads_ok, downloads_failed = excluded.downloads_failed,
                bytes_served = excluded.bytes_served, response_ms = excluded.response_ms,
                invalid_data = excluded.invalid_data, blocked_until = excluded.blocked_until",
        )
        .map_err(err)?;
    for p in peers {
        let addresses = serde_json::to_string(&p.addresses).unwrap_or_else(|_| "[]".into());
        stmt.execute(params![
            p.peer_id,
            addresses,
            p.agent,
            p.protocol_version,
            p.first_seen,
            p.last_seen,
            p.connections,
            p.ping_ms,
            p.valid_records,
            p.invalid_messages,
            p.downloads_ok,
            p.downloads_failed,
            p.bytes_served,
            p.response_ms,
            p.invalid_data,
            p.blocked_until
        ])
        .map_err(err)?;
    }
    Ok(())
}

pub(crate) fn load(conn: &Connection, path: &Path) -> Result<Vec<PeerRow>, Error> {
    let err = super::sqlite(path);
    let mut stmt = conn
        .prepare(
            "SELECT peer_id, addresses, agent, protocol_version, first_seen, last_seen,
                connections, ping_ms, valid_records, invalid_messages, downloads_ok,
                downloads_failed, bytes_served, response_ms, invalid_data, blocked_until FROM peers",
        )
        .map_err(err)?;
    let rows = stmt
        .query_map([], |r| {
            let addresses: String = r.get(1)?;
            Ok(PeerRow {
                peer_id: r.get(0)?,
                addresses: serde_json::from_str(&addresses).unwrap_or_default(),
                agent: r.get(2)?,
                protocol_version: r.get(3)?,
                first_seen: r.get(4)?,
                last_seen: r.get(5)?,
                connections: r.get(6)?,
                ping_ms: r.get(7)?,
                valid_records: r.get(8)?,
                invalid_messages: r.get(9)?,
                downloads_ok: r.get(10)?,
                downloads_failed: r.get(11)?,
                bytes_served: r.get(12)?,
                response_ms: r.get(13)?,
                invalid_data: r.get(14)?,
                blocked_until: r.get(15)?,
            })
        })
        .map_err(err)?;
    rows.collect::<Result<_, _>>().map_err(err)
}

pub(crate) fn add_provider(
    conn: &Connection,
    path: &Path,
    id: &ContentId,
    peer: &str,
    now: i64,
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO providers (content_id, peer_id, seen_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(content_id, peer_id) DO UPDATE SET seen_at = excluded.seen_at",
    )
    .and_then(|mut s| s.execute(params![id.as_bytes().as_slice(), peer, now]))
    .map_err(super::sqlite(path))?;
    Ok(())
}

pub(crate) fn providers(
    conn: &Connection,
    path: &Path,
    id: &ContentId,
) -> Result<Vec<String>, Error> {
    let err = super::sqlite(path);
    let mut stmt = conn
        .prepare_cached("SELECT peer_id FROM providers WHERE content_id = ?1 ORDER BY seen_at DESC")
        .map_err(err)?;
    let rows = stmt
        .query_map([id.as_bytes().as_slice()], |r| r.get::<_, String>(0))
        .map_err(err)?;
    rows.collect::<Result<_, _>>().map_err(err)
}

pub(crate) fn exists(conn: &Connection, path: &Path, peer: &str) -> Result<bool, Error> {
    conn.query_row("SELECT 1 FROM peers WHERE peer_id = ?1", [peer], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
        .map_err(super::sqlite(path))
}

impl Db {
    /// Save (insert or update) peer rows in one transaction.
    pub fn save_peers(&mut self, peers: &[PeerRow]) -> Result<(), Error> {
        self.write(|tx, path| save(tx, path, peers))
    }

    /// Every peer row.
    pub fn load_peers(&self) -> Result<Vec<PeerRow>, Error> {
        load(&self.conn, &self.path)
    }

    /// Whether a peer row exists.
    pub fn peer_known(&self, peer_id: &str) -> Result<bool, Error> {
        exists(&self.conn, &self.path, peer_id)
    }

    /// Remember that `peer_id` provides the archive `content_id`.
    pub fn add_provider(&mut self, content_id: &ContentId, peer_id: &str) -> Result<(), Error> {
        add_provider(&self.conn, &self.path, content_id, peer_id, now())
    }

    /// Peers known to provide `content_id`, most recently seen first.
    pub fn providers(&self, content_id: &ContentId) -> Result<Vec<String>, Error> {
        providers(&self.conn, &self.path, content_id)
    }

    /// Forget the providers other than `me` last seen (announced or delivering) before
    /// `before`, Unix seconds: what other peers announce is kept only as long as their
    /// provider records live, so the table cannot grow without end. Answers how many were
    /// forgotten.
    pub fn prune_providers(&mut self, before: i64, me: &str) -> Result<usize, Error> {
        self.conn
            .prepare_cached("DELETE FROM providers WHERE seen_at < ?1 AND peer_id != ?2")
            .and_then(|mut s| s.execute(params![before, me]))
            .map_err(super::sqlite(&self.path))
    }
}
