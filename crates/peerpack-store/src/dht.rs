//! What the DHT serves, read and written beside the node's main connection.
//!
//! The network's Kademlia store runs in the network event loop and must never wait for the
//! store lock or a write transaction. So it gets connections of its own to `peerpack.db`
//! (WAL mode lets them read while the node writes):
//! - [`DhtReader`], used from the event loop, answers point reads: the signed records the
//!   catalogue holds, and provider records other peers added;
//! - [`DhtWriter`] queues provider-record writes to a thread of its own, which commits them in
//!   batches. The event loop only sends on a channel. It also counts the rows it holds
//!   ([`DhtWriter::held`]), so that the event loop can bound them without a query.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::db::{Error, sqlite};

/// A provider record as stored: the DHT key, the provider's peer id bytes, its addresses'
/// bytes and the expiry in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRow {
    /// The provider's peer id, as bytes.
    pub provider: Vec<u8>,
    /// Its multiaddrs, as bytes.
    pub addresses: Vec<Vec<u8>>,
    /// Expiry, Unix seconds.
    pub expires: i64,
}

/// Most addresses kept per provider record.
const MAX_ADDRESSES: usize = 16;

fn encode_addresses(addrs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in addrs.iter().take(MAX_ADDRESSES) {
        let Ok(len) = u16::try_from(a.len()) else {
            continue;
        };
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(a);
    }
    out
}

fn decode_addresses(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
        let Some(addr) = bytes.get(2..2 + len) else {
            break;
        };
        out.push(addr.to_vec());
        bytes = &bytes[2 + len..];
    }
    out
}

fn open(path: &Path, flags: OpenFlags) -> Result<Connection, Error> {
    let err = sqlite(path);
    let conn = Connection::open_with_flags(path, flags).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    Ok(conn)
}

/// Point reads for the DHT store (see the module documentation).
pub struct DhtReader {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for DhtReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhtReader")
            .field("path", &self.path)
            .finish()
    }
}

impl DhtReader {
    /// A read-only connection to the database of the data directory `dir` (opened, and
    /// migrated, by [`crate::Store::open`] first).
    pub fn open(dir: &Path) -> Result<Self, crate::Error> {
        let path = dir.join(crate::DB_FILE);
        let conn = open(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        Ok(Self { conn, path })
    }

    fn one(&self, sql: &str, params: impl rusqlite::Params) -> Result<Option<Vec<u8>>, Error> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row(params, |r| r.get(0)).optional())
            .map_err(sqlite(&self.path))
    }

    /// The signed record of `name` `version`, if the catalogue holds it.
    pub fn package_record(&self, name: &str, version: &str) -> Result<Option<Vec<u8>>, Error> {
        self.one(
            "SELECT record FROM versions WHERE name = ?1 AND version = ?2",
            params![name, version],
        )
    }

    /// The signed index record of `name`, if the catalogue holds one.
    pub fn index_record(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        self.one(
            "SELECT record FROM index_records WHERE name = ?1",
            params![name],
        )
    }

    /// The signed list of `curator` (its public key's bytes), if held.
    pub fn curator_list(&self, curator: &[u8; 32]) -> Result<Option<Vec<u8>>, Error> {
        self.one(
            "SELECT record FROM curator_lists WHERE curator = ?1",
            params![curator.as_slice()],
        )
    }

    /// The provider records held for `key` that expire after `now` (Unix seconds).
    pub fn providers(&self, key: &[u8], now: i64) -> Result<Vec<ProviderRow>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT provider, addresses, expires FROM dht_providers
                 WHERE key = ?1 AND expires > ?2",
            )
            .map_err(sqlite(&self.path))?;
        let rows = stmt
            .query_map(params![key, now], |r| {
                Ok(ProviderRow {
                    provider: r.get(0)?,
                    addresses: decode_addresses(&r.get::<_, Vec<u8>>(1)?),
                    expires: r.get(2)?,
                })
            })
            .map_err(sqlite(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sqlite(&self.path))
    }

    /// How many provider records are held (expired ones included until the next prune).
    pub fn provider_count(&self) -> Result<u64, Error> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM dht_providers", [], |r| r.get(0))
            .map_err(sqlite(&self.path))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

enum Write {
    Add(Vec<u8>, ProviderRow),
    Remove(Vec<u8>, Vec<u8>),
    Prune(i64),
    Flush(mpsc::Sender<()>),
}

/// Queued writes of provider records (see the module documentation). Cloning shares the
/// thread; it ends when every clone is dropped, after committing what was queued.
#[derive(Clone)]
pub struct DhtWriter {
    tx: mpsc::Sender<Write>,
    count: Arc<Count>,
}

/// The writer's count of rows: those committed, and the additions queued but not yet applied.
#[derive(Debug, Default)]
struct Count {
    committed: AtomicU64,
    queued_adds: AtomicU64,
}

impl std::fmt::Debug for DhtWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DhtWriter")
    }
}

/// Most writes committed in one transaction.
const BATCH: usize = 512;

impl DhtWriter {
    /// Start the writer thread on the database of the data directory `dir`.
    pub fn spawn(dir: &Path) -> Result<Self, crate::Error> {
        let path = dir.join(crate::DB_FILE);
        let conn = open(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite(&path))?;
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM dht_providers", [], |r| r.get(0))
            .map_err(sqlite(&path))?;
        let count = Arc::new(Count {
            committed: AtomicU64::new(u64::try_from(rows).unwrap_or(0)),
            queued_adds: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel();
        let count_for_thread = count.clone();
        std::thread::Builder::new()
            .name("peerpack-dht-writer".into())
            .spawn(move || writer_loop(conn, &path, &rx, &count_for_thread))
            .map_err(|source| crate::Error::Io {
                path: dir.to_owned(),
                source,
            })?;
        Ok(Self { tx, count })
    }

    /// Keep `row` as `key`'s provider record from `row.provider`, replacing an earlier one.
    pub fn add(&self, key: &[u8], row: ProviderRow) {
        self.count.queued_adds.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Write::Add(key.to_vec(), row)).is_err() {
            self.count.queued_adds.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// How many provider records are held, counting every queued addition as a new row (so
    /// it is never below the rows there will be once the queue is written; expired rows count
    /// until they are pruned).
    pub fn held(&self) -> u64 {
        // Queued first: the writer stores the new committed count before it takes its batch's
        // additions off the queue, so a smaller queue means the larger count is visible.
        let queued = self.count.queued_adds.load(Ordering::Acquire);
        self.count.committed.load(Ordering::Acquire) + queued
    }

    /// Forget `provider`'s record for `key`.
    pub fn remove(&self, key: &[u8], provider: &[u8]) {
        let _ = self.tx.send(Write::Remove(key.to_vec(), provider.to_vec()));
    }

    /// Delete the records that expired at `now` (Unix seconds).
    pub fn prune(&self, now: i64) {
        let _ = self.tx.send(Write::Prune(now));
    }

    /// Wait until everything queued before this call is committed.
    pub fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if self.tx.send(Write::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(30));
        }
    }
}

fn writer_loop(mut conn: Connection, path: &Path, rx: &mpsc::Receiver<Write>, count: &Count) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let mut flushed = Vec::new();
        let adds = batch.iter().filter(|w| matches!(w, Write::Add(..))).count() as u64;
        match apply(&mut conn, &mut batch, &mut flushed) {
            Ok(delta) => {
                let c = &count.committed;
                let now = c.load(Ordering::Acquire).saturating_add_signed(delta);
                c.store(now, Ordering::Release);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not store DHT provider records");
            }
        }
        count.queued_adds.fetch_sub(adds, Ordering::Release);
        for done in flushed {
            let _ = done.send(());
        }
    }
}

fn apply(
    conn: &mut Connection,
    batch: &mut Vec<Write>,
    flushed: &mut Vec<mpsc::Sender<()>>,
) -> rusqlite::Result<i64> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Rows added less rows deleted, so that the count needs no query.
    let mut delta: i64 = 0;
    let n = |changed: usize| i64::try_from(changed).unwrap_or(i64::MAX);
    for w in batch.drain(..) {
        match w {
            Write::Add(key, row) => {
                let addresses = encode_addresses(&row.addresses);
                let updated = tx
                    .prepare_cached(
                        "UPDATE dht_providers SET addresses = ?3, expires = ?4
                         WHERE key = ?1 AND provider = ?2",
                    )?
                    .execute(params![key, row.provider, addresses, row.expires])?;
                if updated == 0 {
                    tx.prepare_cached(
                        "INSERT INTO dht_providers (key, provider, addresses, expires)
                         VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![
                        key,
                        row.provider,
                        addresses,
                        row.expires
                    ])?;
                    delta += 1;
                }
            }
            Write::Remove(key, provider) => {
                let gone = tx
                    .prepare_cached("DELETE FROM dht_providers WHERE key = ?1 AND provider = ?2")?
                    .execute(params![key, provider])?;
                delta -= n(gone);
            }
            Write::Prune(now) => {
                let gone = tx
                    .prepare_cached("DELETE FROM dht_providers WHERE expires <= ?1")?
                    .execute(params![now])?;
                delta -= n(gone);
            }
            Write::Flush(done) => flushed.push(done),
        }
    }
    tx.commit()?;
    Ok(delta)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn provider_records_survive_reopening_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        drop(crate::Store::open(dir.path()).unwrap());
        let writer = DhtWriter::spawn(dir.path()).unwrap();
        let key = [0x1e, 0x20, 7, 7];
        let now = crate::db::now();
        let row = |p: u8, expires| ProviderRow {
            provider: vec![p; 38],
            addresses: vec![b"/ip4/127.0.0.1/tcp/1".to_vec(), vec![]],
            expires,
        };
        writer.add(&key, row(1, now + 100));
        writer.add(&key, row(2, now - 1));
        writer.add(&key, row(3, now + 100));
        writer.remove(&key, &[3; 38]);
        writer.flush();
        drop(writer);

        let reader = DhtReader::open(dir.path()).unwrap();
        assert_eq!(
            reader.providers(&key, now).unwrap(),
            vec![row(1, now + 100)]
        );
        assert_eq!(reader.provider_count().unwrap(), 2);
        let writer = DhtWriter::spawn(dir.path()).unwrap();
        assert_eq!(writer.held(), 2, "the count is read at start");
        writer.add(&key, row(1, now + 200));
        writer.flush();
        assert_eq!(
            writer.held(),
            2,
            "a provider's new record replaces its old one"
        );
        writer.prune(now);
        writer.flush();
        assert_eq!(reader.provider_count().unwrap(), 1);
        assert_eq!(writer.held(), 1);
    }

    #[test]
    fn truncated_addresses_decode_to_what_is_whole() {
        let mut bytes = encode_addresses(&[b"abc".to_vec(), b"de".to_vec()]);
        bytes.truncate(bytes.len() - 1);
        assert_eq!(decode_addresses(&bytes), vec![b"abc".to_vec()]);
    }
}
