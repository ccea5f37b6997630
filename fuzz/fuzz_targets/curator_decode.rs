//! `CuratorList::decode` and `decode_verified` on arbitrary bytes: never panic, and whatever
//! decodes is canonical (encoding it again gives back exactly the input).

#![no_main]

use libfuzzer_sys::fuzz_target;
use peerpack_core::CuratorList;
use peerpack_core::record::RecordError;

fuzz_target!(|data: &[u8]| {
    let decoded = CuratorList::decode(data);
    if let Ok(list) = &decoded {
        assert_eq!(
            list.encode(),
            data,
            "a decoded list re-encodes to other bytes"
        );
        for (name, owner) in &list.entries {
            assert_eq!(list.owner_of(name), Some(owner));
        }
    }
    match CuratorList::decode_verified(data) {
        Ok(list) => {
            assert_eq!(list.encode(), data);
            assert_eq!(decoded.ok().as_ref(), Some(&list));
        }
        Err(e) => assert_eq!(
            decoded.is_ok(),
            matches!(e, RecordError::BadCuratorSignature { .. }),
            "{e}"
        ),
    }
});
