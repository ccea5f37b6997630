//! Property tests of the wire codecs: every blob and sync message survives writing and reading
//! unchanged, and arbitrary bytes never panic a reader. Case counts are small so the suite
//! stays fast; the fuzz targets in `fuzz/` (see docs/FUZZING.md) search much further.

#![allow(clippy::unwrap_used)]

use futures::executor::block_on;
use futures::io::Cursor;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;
use peerpack_net::blob::{self, BlobCodec, BlobRequest, BlobResponse};
use peerpack_net::sync::{self, SyncRequest, SyncResponse};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use serde_bytes::ByteBuf;

const CASES: u32 = 64;

fn bytes(max: usize) -> impl Strategy<Value = ByteBuf> {
    vec(any::<u8>(), 0..=max).prop_map(ByteBuf::from)
}

fn blob_request() -> impl Strategy<Value = BlobRequest> {
    prop_oneof![
        bytes(64).prop_map(|content_id| BlobRequest::Outline { content_id }),
        (bytes(64), any::<u64>(), any::<u32>()).prop_map(|(content_id, offset, length)| {
            BlobRequest::Range {
                content_id,
                offset,
                length,
            }
        }),
    ]
}

fn blob_response() -> impl Strategy<Value = BlobResponse> {
    prop_oneof![
        (any::<u64>(), bytes(32 * 16))
            .prop_map(|(total_size, values)| BlobResponse::Outline { total_size, values }),
        (any::<u64>(), any::<u64>(), bytes(4096)).prop_map(|(offset, total_size, data)| {
            BlobResponse::Chunk {
                offset,
                total_size,
                data,
            }
        }),
        Just(BlobResponse::NotFound),
        // At most 200 characters of at most 4 bytes: under the 1024-byte cap.
        ".{0,200}".prop_map(BlobResponse::Refused),
    ]
}

fn sync_request() -> impl Strategy<Value = SyncRequest> {
    prop_oneof![
        Just(SyncRequest::Summary),
        (option::of(".{0,80}"), any::<u32>())
            .prop_map(|(after, limit)| SyncRequest::Page { after, limit }),
    ]
}

fn sync_response() -> impl Strategy<Value = SyncResponse> {
    prop_oneof![
        (any::<u64>(), bytes(32))
            .prop_map(|(count, digest)| SyncResponse::Summary { count, digest }),
        (vec(bytes(512), 0..8), option::of(".{0,80}"))
            .prop_map(|(records, next)| SyncResponse::Page { records, next }),
        ".{0,200}".prop_map(SyncResponse::Error),
    ]
}

fn blob_protocol() -> StreamProtocol {
    StreamProtocol::new(blob::PROTOCOL)
}

fn sync_protocol() -> StreamProtocol {
    StreamProtocol::new(sync::PROTOCOL)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn blob_requests_round_trip(req in blob_request(), junk in bytes(16)) {
        block_on(async {
            let mut wire = Vec::new();
            BlobCodec.write_request(&blob_protocol(), &mut wire, req.clone()).await.unwrap();
            let len = wire.len() as u64;
            // The reader stops where the message ends, whatever follows it.
            wire.extend_from_slice(&junk);
            let mut input = Cursor::new(&wire);
            let back = BlobCodec.read_request(&blob_protocol(), &mut input).await.unwrap();
            prop_assert_eq!(back, req);
            prop_assert_eq!(input.position(), len);
            Ok(())
        })?;
    }

    #[test]
    fn blob_responses_round_trip(res in blob_response(), junk in bytes(16)) {
        block_on(async {
            let mut wire = Vec::new();
            BlobCodec.write_response(&blob_protocol(), &mut wire, res.clone()).await.unwrap();
            let len = wire.len() as u64;
            wire.extend_from_slice(&junk);
            let mut input = Cursor::new(&wire);
            let back = BlobCodec.read_response(&blob_protocol(), &mut input).await.unwrap();
            prop_assert_eq!(back, res);
            prop_assert_eq!(input.position(), len);
            Ok(())
        })?;
    }

    #[test]
    fn sync_requests_round_trip(req in sync_request()) {
        block_on(async {
            let mut wire = Vec::new();
            sync::codec().write_request(&sync_protocol(), &mut wire, req.clone()).await.unwrap();
            let back = sync::codec()
                .read_request(&sync_protocol(), &mut Cursor::new(&wire))
                .await
                .unwrap();
            prop_assert_eq!(back, req);
            Ok(())
        })?;
    }

    #[test]
    fn sync_responses_round_trip(res in sync_response()) {
        block_on(async {
            let mut wire = Vec::new();
            sync::codec().write_response(&sync_protocol(), &mut wire, res.clone()).await.unwrap();
            let back = sync::codec()
                .read_response(&sync_protocol(), &mut Cursor::new(&wire))
                .await
                .unwrap();
            prop_assert_eq!(back, res);
            Ok(())
        })?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_reader(data in vec(any::<u8>(), 0..512)) {
        block_on(async {
            let _ = BlobCodec.read_request(&blob_protocol(), &mut Cursor::new(&data)).await;
            let _ = BlobCodec.read_response(&blob_protocol(), &mut Cursor::new(&data)).await;
            let _ = sync::codec().read_request(&sync_protocol(), &mut Cursor::new(&data)).await;
            let _ = sync::codec().read_response(&sync_protocol(), &mut Cursor::new(&data)).await;
        });
    }

    #[test]
    fn corrupted_messages_never_panic_a_reader(
        res in blob_response(),
        page in sync_response(),
        changes in vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        block_on(async {
            let mut wire = Vec::new();
            BlobCodec.write_response(&blob_protocol(), &mut wire, res).await.unwrap();
            for (i, v) in &changes {
                let i = i % wire.len();
                wire[i] = *v;
            }
            let _ = BlobCodec.read_response(&blob_protocol(), &mut Cursor::new(&wire)).await;
            let _ = BlobCodec.read_request(&blob_protocol(), &mut Cursor::new(&wire)).await;

            let mut wire = Vec::new();
            sync::codec().write_response(&sync_protocol(), &mut wire, page).await.unwrap();
            for (i, v) in &changes {
                let i = i % wire.len();
                wire[i] = *v;
            }
            let _ = sync::codec().read_response(&sync_protocol(), &mut Cursor::new(&wire)).await;
            let _ = sync::codec().read_request(&sync_protocol(), &mut Cursor::new(&wire)).await;
        });
    }
}
