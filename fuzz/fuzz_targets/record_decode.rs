//! `PackageRecord::decode` and `decode_verified` on arbitrary bytes: never panic, and whatever
//! decodes is canonical (encoding it again gives back exactly the input).

#![no_main]

use libfuzzer_sys::fuzz_target;
use peerpack_core::{PackageRecord, RecordHash};

fuzz_target!(|data: &[u8]| {
    let decoded = PackageRecord::decode(data);
    if let Ok(record) = &decoded {
        assert_eq!(
            record.encode(),
            data,
            "a decoded record re-encodes to other bytes"
        );
        assert_eq!(record.hash(), RecordHash::of(data));
        assert!(
            record.manifest.validate().is_ok(),
            "decode accepted an invalid manifest"
        );
    }
    match PackageRecord::decode_verified(data) {
        Ok(record) => {
            assert_eq!(record.encode(), data);
            assert_eq!(decoded.ok().as_ref(), Some(&record));
        }
        // Only a record that decodes can fail on its signature.
        Err(e) => assert_eq!(
            decoded.is_ok(),
            matches!(e, peerpack_core::record::RecordError::BadSignature { .. }),
            "{e}"
        ),
    }
});
