//! The catalogue sync codec (`peerpack_net::sync::codec()`, CBOR) reading a `SyncRequest` and a
//! `SyncResponse` from arbitrary bytes, as a peer's stream: never panic, never read past the
//! size caps. A message that reads writes and reads back as the same value.

#![no_main]

use futures::executor::block_on;
use futures::io::Cursor;
use libfuzzer_sys::fuzz_target;
use peerpack_net::p2p::StreamProtocol;
use peerpack_net::p2p::request_response::Codec;
use peerpack_net::sync::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, PROTOCOL, codec};

fuzz_target!(|data: &[u8]| {
    block_on(async {
        let protocol = StreamProtocol::new(PROTOCOL);

        let mut input = Cursor::new(data);
        if let Ok(request) = codec().read_request(&protocol, &mut input).await {
            assert!(input.position() <= MAX_REQUEST_BYTES);
            let mut wire = Vec::new();
            codec()
                .write_request(&protocol, &mut wire, request.clone())
                .await
                .expect("a request that was read can be written");
            let back = codec()
                .read_request(&protocol, &mut Cursor::new(&wire))
                .await
                .expect("a written request reads back");
            assert_eq!(back, request);
        }

        let mut input = Cursor::new(data);
        if let Ok(response) = codec().read_response(&protocol, &mut input).await {
            assert!(input.position() <= MAX_RESPONSE_BYTES);
            let mut wire = Vec::new();
            codec()
                .write_response(&protocol, &mut wire, response.clone())
                .await
                .expect("a response that was read can be written");
            let back = codec()
                .read_response(&protocol, &mut Cursor::new(&wire))
                .await
                .expect("a written response reads back");
            assert_eq!(back, response);
        }
    })
});
