//! `Manifest::parse` on arbitrary bytes that are valid UTF-8: never panic. A manifest that
//! parses must also validate, and a record signed over it must decode back to the same
//! manifest: whatever `peerpack publish` accepts, every node must accept too.

#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use peerpack_core::record::{RecordError, RecordFields};
use peerpack_core::{ContentId, Manifest, PackageRecord, PublisherKey};

static KEY: LazyLock<PublisherKey> = LazyLock::new(|| PublisherKey::from_secret_bytes(&[7; 32]));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(manifest) = Manifest::parse(text, Path::new("peerpack.toml")) else {
        return;
    };
    if let Err(p) = manifest.validate() {
        panic!("parse accepted a manifest that does not validate: {p}");
    }
    let fields = RecordFields {
        manifest: manifest.clone(),
        content_id: ContentId::of(data),
        archive_size: data.len() as u64,
        seq: 1,
        published_at: 1,
    };
    match PackageRecord::sign(fields, &KEY) {
        Ok(record) => match PackageRecord::decode_verified(&record.encode()) {
            Ok(back) => assert_eq!(back.manifest, manifest),
            Err(e) => panic!("a record signed over a parsed manifest does not decode: {e}"),
        },
        // Only size may stop a valid manifest from being signed.
        Err(RecordError::TooLarge(_)) => {}
        Err(e) => panic!("a parsed manifest cannot be signed: {e}"),
    }
});
