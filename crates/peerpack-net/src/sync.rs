//! The catalogue sync protocol (`/peerpack/sync/1.0.0`, request-response with CBOR).
//!
//! A node that connects to a peer asks for a [`SyncRequest::Summary`]: the number of records
//! the peer holds and the XOR of their record hashes. If that differs from its own, it pages
//! through the peer's catalogue in (name, version) order with [`SyncRequest::Page`] and
//! validates every record as if it had arrived by gossip. Gossip only carries what is new;
//! sync is how a node that joins late, or was offline, learns the whole catalogue.

//!
//! # Framing and sizes
//!
//! Each request and each response is one CBOR value alone on its own stream (rust-libp2p's
//! request-response CBOR codec): the requester writes the request and closes its write side,
//! the responder reads to the end, writes the response and closes; the requester reads the
//! response to the end. Requests are read up to [`MAX_REQUEST_BYTES`] and responses up to
//! [`MAX_RESPONSE_BYTES`]; a longer message is cut off there and fails to decode. A page
//! therefore stops at [`PAGE_BUDGET`] bytes of records as well as at its `limit`.

use libp2p::request_response::cbor::codec::Codec;
use peerpack_core::PackageRecord;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// Protocol id of catalogue sync.
pub const PROTOCOL: &str = "/peerpack/sync/1.0.0";
/// Most records a page may hold; a larger `limit` is clamped.
pub const MAX_PAGE: u32 = 256;
/// Largest request a node reads (1 MiB, the CBOR codec's default).
pub const MAX_REQUEST_BYTES: u64 = 1024 * 1024;
/// Largest response a node reads (10 MiB, the CBOR codec's default).
pub const MAX_RESPONSE_BYTES: u64 = 10 * 1024 * 1024;
/// Most bytes of records one page carries, each record counted as its length plus
/// [`RECORD_OVERHEAD`]. A record past the budget goes to the next page, except the first of a
/// page, which is always sent. With records of at most 64 KiB and a few hundred bytes of
/// framing, a page stays well under [`MAX_RESPONSE_BYTES`].
pub const PAGE_BUDGET: usize = 8 * 1024 * 1024;
/// CBOR header bytes counted per record: a byte string of up to 2^32 - 1 bytes has a header of
/// at most 5 bytes.
pub const RECORD_OVERHEAD: usize = 5;

/// The codec of catalogue sync, with its size caps set explicitly.
pub fn codec() -> Codec<SyncRequest, SyncResponse> {
    Codec::default()
        .set_request_size_maximum(MAX_REQUEST_BYTES)
        .set_response_size_maximum(MAX_RESPONSE_BYTES)
}

/// The cursor naming `record`: `"<name>/<version>"`.
pub fn cursor(record: &PackageRecord) -> String {
    format!("{}/{}", record.name(), record.version())
}

/// Split a cursor into its name and version (at the first `/`); `None` if it has no `/`.
/// Cursors are ordered as these pairs are, byte by byte: the order of a page.
pub fn parse_cursor(cursor: &str) -> Option<(&str, &str)> {
    cursor.split_once('/')
}

/// The answer to `Page { limit, .. }`, built from the records that follow the cursor, in
/// (name, version) order. Give it at least `limit + 1` records when that many follow (more are
/// not looked at): `next` is `None` exactly when no record follows the page.
///
/// The page holds the first records up to `limit` (clamped to 1..=[`MAX_PAGE`]) and up to
/// [`PAGE_BUDGET`] bytes, and always at least one record if any follows.
pub fn page<'a>(
    following: impl IntoIterator<Item = &'a PackageRecord>,
    limit: u32,
) -> SyncResponse {
    let limit = limit.clamp(1, MAX_PAGE) as usize;
    let mut records = Vec::new();
    let mut used = 0usize;
    let mut last = None;
    let mut more = false;
    for record in following {
        if records.len() == limit {
            more = true;
            break;
        }
        let bytes = record.encode();
        let cost = bytes.len() + RECORD_OVERHEAD;
        if !records.is_empty() && used + cost > PAGE_BUDGET {
            more = true;
            break;
        }
        used += cost;
        last = Some(record);
        records.push(ByteBuf::from(bytes));
    }
    SyncResponse::Page {
        records,
        next: last.filter(|_| more).map(cursor),
    }
}

/// A sync request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// How many records do you hold, and what is their digest?
    Summary,
    /// Records after `after` (a `name/version` cursor; `None` from the start), at most
    /// `limit` of them.
    Page {
        /// Exclusive cursor: `"<name>/<version>"`.
        after: Option<String>,
        /// Most records wanted.
        limit: u32,
    },
}

impl SyncRequest {
    /// `summary` or `page`, for logs and spans.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Summary => "summary",
            Self::Page { .. } => "page",
        }
    }
}

/// A sync response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// Answer to [`SyncRequest::Summary`].
    Summary {
        /// Number of package records held.
        count: u64,
        /// XOR of the BLAKE3 hashes of every record held (32 bytes).
        digest: ByteBuf,
    },
    /// Answer to [`SyncRequest::Page`].
    Page {
        /// Encoded package records, in (name, version) order.
        records: Vec<ByteBuf>,
        /// The cursor of the page's last record when more records follow it; `None` when no
        /// record follows.
        next: Option<String>,
    },
    /// The request could not be served.
    Error(String),
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use libp2p::StreamProtocol;
    use libp2p::request_response::Codec as _;
    use peerpack_core::limits::*;
    use peerpack_core::record::RecordFields;
    use peerpack_core::{
        ContentId, Manifest, PackageName, PackageRecord, PublisherKey, Version, VersionReq,
    };

    use super::*;

    /// A 4-byte UTF-8 character (U+1D11E), the most bytes a character can take.
    const WIDE: char = '\u{1D11E}';

    fn wide(n: usize) -> String {
        std::iter::repeat_n(WIDE, n).collect()
    }

    fn padded(prefix: String, len: usize, fill: char) -> String {
        let mut s = prefix;
        while s.len() < len {
            s.push(fill);
        }
        s
    }

    /// A record with every field at its limit, in multi-byte characters where characters are
    /// counted: close to the largest record the format allows.
    fn largest_record(i: usize, key: &PublisherKey) -> PackageRecord {
        let name = PackageName::new(&padded(format!("p{:03}-", i / 4), MAX_NAME_LEN, 'x')).unwrap();
        let version: Version = padded(format!("{}.0.0-", i % 4), MAX_REQ_LEN, 'a')
            .parse()
            .unwrap();
        let req: VersionReq = padded("=1.0.0-".into(), MAX_REQ_LEN, 'b').parse().unwrap();
        assert_eq!(req.to_string().len(), MAX_REQ_LEN);
        let dependencies: BTreeMap<_, _> = (0..MAX_DEPENDENCIES)
            .map(|d| {
                let dep = PackageName::new(&padded(format!("d{d:03}-"), MAX_NAME_LEN, 'y'));
                (dep.unwrap(), req.clone())
            })
            .collect();
        let keywords = |c: char, n: usize| -> Vec<String> {
            (0..n)
                .map(|k| padded(format!("{c}{k}-"), MAX_KEYWORD_LEN, 'z'))
                .collect()
        };
        let url = format!("https://{}", wide(MAX_URL_LEN - 8));
        let manifest = Manifest {
            name,
            version,
            description: wide(MAX_DESCRIPTION_LEN),
            license: wide(MAX_LICENSE_LEN),
            authors: vec![wide(MAX_AUTHOR_LEN); MAX_AUTHORS],
            categories: keywords('c', MAX_CATEGORIES),
            tags: keywords('t', MAX_TAGS),
            homepage: Some(url.clone()),
            repository: Some(url),
            readme: Some(wide(MAX_URL_LEN)),
            dependencies,
        };
        let fields = RecordFields {
            manifest,
            content_id: ContentId::of(&i.to_le_bytes()),
            archive_size: u64::MAX,
            seq: u64::MAX,
            published_at: u64::MAX,
        };
        PackageRecord::sign(fields, key).unwrap()
    }

    fn small_record(i: usize, key: &PublisherKey) -> PackageRecord {
        let manifest = Manifest {
            name: PackageName::new(&format!("s{i:04}")).unwrap(),
            version: Version::new(1, 0, 0),
            description: "small".into(),
            license: "MIT".into(),
            authors: vec!["Ada".into()],
            categories: Vec::new(),
            tags: Vec::new(),
            homepage: None,
            repository: None,
            readme: None,
            dependencies: BTreeMap::new(),
        };
        let fields = RecordFields {
            manifest,
            content_id: ContentId::of(&i.to_le_bytes()),
            archive_size: 1,
            seq: 1,
            published_at: 1,
        };
        PackageRecord::sign(fields, key).unwrap()
    }

    /// Put `response` through the real codec: its encoded size, and what the requester reads.
    fn over_the_wire(response: SyncResponse) -> (usize, SyncResponse) {
        futures::executor::block_on(async {
            let protocol = StreamProtocol::new(PROTOCOL);
            let mut wire = Vec::new();
            codec()
                .write_response(&protocol, &mut wire, response)
                .await
                .unwrap();
            let read = codec()
                .read_response(&protocol, &mut &wire[..])
                .await
                .unwrap();
            (wire.len(), read)
        })
    }

    /// Page through `catalogue` (sorted) the way a responder does, fetching `limit + 1` records
    /// after the cursor. Returns the records received and the page sizes.
    fn page_through(catalogue: &[PackageRecord], limit: u32) -> (Vec<Vec<u8>>, Vec<usize>) {
        let fetch = (limit.clamp(1, MAX_PAGE) + 1) as usize;
        let mut after: Option<String> = None;
        let mut received = Vec::new();
        let mut sizes = Vec::new();
        loop {
            let following: Vec<&PackageRecord> = catalogue
                .iter()
                .filter(|r| match after.as_deref().and_then(parse_cursor) {
                    None => true,
                    Some(c) => (r.name().as_str(), r.version().to_string().as_str()) > c,
                })
                .take(fetch)
                .collect();
            let (wire_len, response) = over_the_wire(page(following, limit));
            assert!(
                wire_len as u64 <= MAX_RESPONSE_BYTES,
                "a page of {wire_len} bytes exceeds the response cap"
            );
            let SyncResponse::Page { records, next } = response else {
                panic!("not a page");
            };
            assert!(!records.is_empty() || received.is_empty());
            sizes.push(records.len());
            received.extend(records.into_iter().map(ByteBuf::into_vec));
            match next {
                Some(n) => {
                    assert!(after.as_deref().and_then(parse_cursor) < parse_cursor(&n));
                    after = Some(n);
                }
                None => break,
            }
        }
        (received, sizes)
    }

    fn sorted(mut records: Vec<PackageRecord>) -> Vec<PackageRecord> {
        records.sort_by_key(|r| (r.name().as_str().to_owned(), r.version().to_string()));
        records
    }

    #[test]
    fn pages_of_the_largest_records_fit_the_response_cap() {
        let key = PublisherKey::from_secret_bytes(&[7; 32]);
        let catalogue = sorted((0..300).map(|i| largest_record(i, &key)).collect());
        let largest = catalogue.iter().map(|r| r.encode().len()).max().unwrap();
        assert!(largest > 60_000 && largest <= MAX_RECORD_SIZE, "{largest}");
        // Without the byte budget, a full page would not fit.
        assert!(MAX_PAGE as usize * largest > MAX_RESPONSE_BYTES as usize);

        let (received, sizes) = page_through(&catalogue, MAX_PAGE);
        assert!(sizes.len() >= 3, "{sizes:?}");
        assert!(
            sizes.iter().all(|n| *n >= 1 && *n < MAX_PAGE as usize),
            "{sizes:?}"
        );
        let expected: Vec<Vec<u8>> = catalogue.iter().map(PackageRecord::encode).collect();
        assert_eq!(received, expected, "every record, in order");
        let unique: HashSet<&Vec<u8>> = received.iter().collect();
        assert_eq!(unique.len(), catalogue.len(), "no record twice");
    }

    #[test]
    fn next_is_null_exactly_when_no_record_follows() {
        let key = PublisherKey::from_secret_bytes(&[8; 32]);
        let catalogue = sorted(
            (0..2 * MAX_PAGE as usize)
                .map(|i| small_record(i, &key))
                .collect(),
        );
        let expected: Vec<Vec<u8>> = catalogue.iter().map(PackageRecord::encode).collect();
        // Two full pages: the second says it is the last, with no empty third page.
        let (received, sizes) = page_through(&catalogue, MAX_PAGE);
        assert_eq!(sizes, [MAX_PAGE as usize, MAX_PAGE as usize]);
        assert_eq!(received, expected);
        // A limit of 0 is clamped to 1; a larger one to MAX_PAGE.
        let (received, sizes) = page_through(&catalogue[..3], 0);
        assert_eq!(sizes, [1, 1, 1]);
        assert_eq!(received, expected[..3]);
        let (_, sizes) = page_through(&catalogue, u32::MAX);
        assert_eq!(sizes, [MAX_PAGE as usize, MAX_PAGE as usize]);
        // Nothing after the cursor: an empty last page.
        let SyncResponse::Page { records, next } = page([], MAX_PAGE) else {
            panic!("not a page");
        };
        assert!(records.is_empty() && next.is_none());
    }
}
