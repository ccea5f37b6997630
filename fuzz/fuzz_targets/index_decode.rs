//! `IndexRecord::decode` and `decode_verified` on arbitrary bytes: never panic, and whatever
//! decodes is canonical (encoding it again gives back exactly the input).

#![no_main]

use libfuzzer_sys::fuzz_target;
use peerpack_core::IndexRecord;
use peerpack_core::record::RecordError;

fuzz_target!(|data: &[u8]| {
    let decoded = IndexRecord::decode(data);
    if let Ok(index) = &decoded {
        assert_eq!(
            index.encode(),
            data,
            "a decoded index re-encodes to other bytes"
        );
        assert!(
            index
                .versions
                .windows(2)
                .all(|w| w[0].version < w[1].version),
            "versions not strictly ascending"
        );
        for e in &index.versions {
            assert!(index.entry(&e.version).is_some());
        }
    }
    match IndexRecord::decode_verified(data) {
        Ok(index) => {
            assert_eq!(index.encode(), data);
            assert_eq!(decoded.ok().as_ref(), Some(&index));
        }
        Err(e) => assert_eq!(
            decoded.is_ok(),
            matches!(e, RecordError::BadSignature { .. }),
            "{e}"
        ),
    }
});
