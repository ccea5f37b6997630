//! The blob codec's `read_request` and `read_response` on arbitrary bytes, as a peer's stream:
//! never panic, never allocate more than the format's caps. A request that reads is what
//! writing it gives back, byte for byte (the reader stops where the message ends); a response
//! that reads writes and reads back as the same value.

#![no_main]

use futures::executor::block_on;
use futures::io::Cursor;
use libfuzzer_sys::fuzz_target;
use peerpack_net::blob::{BlobCodec, BlobResponse, MAX_CHUNK, MAX_OUTLINE, PROTOCOL};
use peerpack_net::p2p::StreamProtocol;
use peerpack_net::p2p::request_response::Codec;

/// Longest refusal text the codec writes (the private `MAX_REASON`).
const MAX_REASON: usize = 1024;

fuzz_target!(|data: &[u8]| {
    block_on(async {
        let protocol = StreamProtocol::new(PROTOCOL);
        let mut codec = BlobCodec;

        let mut input = Cursor::new(data);
        if let Ok(request) = codec.read_request(&protocol, &mut input).await {
            let used = input.position() as usize;
            assert!(request.content_id().len() <= 64);
            let mut wire = Vec::new();
            codec
                .write_request(&protocol, &mut wire, request.clone())
                .await
                .expect("a request that was read can be written");
            assert_eq!(wire, data[..used], "{request:?} re-encodes to other bytes");
        }

        let mut input = Cursor::new(data);
        if let Ok(response) = codec.read_response(&protocol, &mut input).await {
            let used = input.position() as usize;
            match &response {
                BlobResponse::Outline { values, .. } => {
                    assert!(values.len() <= MAX_OUTLINE as usize)
                }
                BlobResponse::Chunk { data, .. } => assert!(data.len() <= MAX_CHUNK as usize),
                BlobResponse::NotFound => {}
                // Invalid UTF-8 is read lossily: each bad byte becomes U+FFFD (three bytes).
                BlobResponse::Refused(text) => assert!(text.len() <= 3 * MAX_REASON),
            }
            let mut wire = Vec::new();
            codec
                .write_response(&protocol, &mut wire, response.clone())
                .await
                .expect("a response that was read can be written");
            let back = codec
                .read_response(&protocol, &mut Cursor::new(&wire))
                .await
                .expect("a written response reads back");
            match &response {
                // The writer cuts a refusal at MAX_REASON bytes; lossy reading can make a
                // longer one. Anything else comes back exactly, from the very same bytes when
                // the text was valid UTF-8.
                BlobResponse::Refused(text) if text.len() > MAX_REASON => {
                    let BlobResponse::Refused(cut) = &back else {
                        panic!("{back:?}")
                    };
                    assert!(text.starts_with(cut.as_str()));
                }
                _ => {
                    assert_eq!(back, response);
                    // A refusal is 0x04, a u16 length, then the text.
                    let exact = match response {
                        BlobResponse::Refused(_) => std::str::from_utf8(&data[3..used]).is_ok(),
                        _ => true,
                    };
                    if exact {
                        assert_eq!(wire, data[..used], "{response:?} re-encodes to other bytes");
                    }
                }
            }
        }
    })
});
