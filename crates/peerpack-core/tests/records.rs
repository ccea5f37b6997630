//! Signed records: round trips and every way verification must refuse a record.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use peerpack_core::record::{IndexEntry, IndexUpdate, RecordError, RecordFields};
use peerpack_core::{
    ContentId, DecodeError, IndexRecord, Manifest, PackageName, PackageRecord, PublisherKey,
    Version,
};

const MANIFEST: &str = r#"
[package]
name = "axum-service"
version = "0.3.1"
description = "An axum HTTP service template with tracing and graceful shutdown"
license = "MIT OR Apache-2.0"
authors = ["Grace <grace@example.org>"]
categories = ["web"]
tags = ["rust", "axum", "http"]
repository = "https://example.org/axum-service"

[dependencies]
ci-workflow = "^1.2"
"#;

fn manifest() -> Manifest {
    Manifest::parse(MANIFEST, Path::new("peerpack.toml")).unwrap()
}

fn key(seed: u8) -> PublisherKey {
    PublisherKey::from_secret_bytes(&[seed; 32])
}

fn record(key: &PublisherKey) -> PackageRecord {
    PackageRecord::sign(
        RecordFields {
            manifest: manifest(),
            content_id: ContentId::of(b"archive bytes"),
            archive_size: 13,
            seq: 1,
            published_at: 1_790_000_000,
        },
        key,
    )
    .unwrap()
}

fn name(s: &str) -> PackageName {
    PackageName::new(s).unwrap()
}

#[test]
fn package_record_round_trips_and_verifies() {
    let r = record(&key(1));
    let bytes = r.encode();
    let back = PackageRecord::decode_verified(&bytes).unwrap();
    assert_eq!(back, r);
    assert_eq!(back.encode(), bytes, "one canonical encoding");
    assert_eq!(back.hash(), r.hash());
    back.check_key(&name("axum-service"), Some(&Version::new(0, 3, 1)))
        .unwrap();
    back.check_owner(&key(1).public()).unwrap();
}

#[test]
fn wrong_key_is_refused() {
    let r = record(&key(1));
    let err = r.check_owner(&key(2).public()).unwrap_err();
    assert!(matches!(err, RecordError::WrongPublisher { .. }));
    let text = err.to_string();
    assert!(
        text.contains(&key(1).public().to_string()) && text.contains(&key(2).public().to_string()),
        "{text}"
    );

    // A record whose publisher field is swapped for another key no longer verifies.
    let mut forged = r.clone();
    forged.publisher = key(2).public();
    assert!(matches!(
        PackageRecord::decode_verified(&forged.encode()),
        Err(RecordError::BadSignature { .. })
    ));
}

#[test]
fn tampered_fields_are_refused() {
    let r = record(&key(1));
    let mut tampered = r.clone();
    tampered.manifest.description = "An axum HTTP service template with a backdoor".into();
    assert!(matches!(
        tampered.verify(),
        Err(RecordError::BadSignature { .. })
    ));

    let mut tampered = r.clone();
    tampered.content_id = ContentId::of(b"other archive");
    assert!(matches!(
        PackageRecord::decode_verified(&tampered.encode()),
        Err(RecordError::BadSignature { .. })
    ));

    let mut tampered = r.clone();
    tampered.archive_size += 1;
    assert!(tampered.verify().is_err());

    // Flipping any single byte of the wire form is caught, by decoding or by the signature.
    let bytes = r.encode();
    for i in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        assert!(
            PackageRecord::decode_verified(&b).is_err(),
            "flip at {i} accepted"
        );
    }
}

#[test]
fn truncated_signature_is_refused() {
    let bytes = record(&key(1)).encode();
    let err = PackageRecord::decode_verified(&bytes[..bytes.len() - 1]).unwrap_err();
    assert_eq!(
        err,
        RecordError::Decode(DecodeError::Truncated("signature"))
    );
    assert!(err.to_string().contains("signature"));
    let err = PackageRecord::decode(&bytes[..bytes.len() - 64]).unwrap_err();
    assert_eq!(err, DecodeError::Truncated("signature"));
}

#[test]
fn trailing_bytes_and_oversize_are_refused() {
    let mut bytes = record(&key(1)).encode();
    bytes.push(0);
    assert_eq!(
        PackageRecord::decode(&bytes).unwrap_err(),
        DecodeError::TrailingBytes(1)
    );
    let huge = vec![0u8; peerpack_core::limits::MAX_RECORD_SIZE + 1];
    assert!(matches!(
        PackageRecord::decode(&huge),
        Err(DecodeError::RecordTooLarge(_))
    ));
    assert!(matches!(
        PackageRecord::decode(b"garbage"),
        Err(DecodeError::BadTag(_) | DecodeError::Truncated(_))
    ));
}

#[test]
fn record_for_another_name_is_refused() {
    let r = record(&key(1));
    assert!(matches!(
        r.check_key(&name("rust-cli"), None),
        Err(RecordError::WrongName { .. })
    ));
    assert!(matches!(
        r.check_key(&name("axum-service"), Some(&Version::new(9, 9, 9))),
        Err(RecordError::WrongVersion { .. })
    ));
}

fn index(key: &PublisherKey, seq: u64, versions: &[(&str, &PackageRecord)]) -> IndexRecord {
    let entries = versions
        .iter()
        .map(|(v, r)| IndexEntry::new(Version::parse(v).unwrap(), r.hash()))
        .collect();
    IndexRecord::sign(name("axum-service"), entries, seq, 1_790_000_000 + seq, key).unwrap()
}

#[test]
fn index_record_round_trips_sorted() {
    let r = record(&key(1));
    let idx = index(&key(1), 3, &[("1.0.0", &r), ("0.3.1", &r), ("0.10.0", &r)]);
    let versions: Vec<String> = idx.versions.iter().map(|e| e.version.to_string()).collect();
    assert_eq!(versions, ["0.3.1", "0.10.0", "1.0.0"]);
    let back = IndexRecord::decode_verified(&idx.encode()).unwrap();
    assert_eq!(back, idx);
    assert!(back.entry(&Version::new(0, 10, 0)).is_some());
}

#[test]
fn yanks_and_deprecations_take_the_second_form_and_only_then() {
    let r = record(&key(1));
    let plain = index(&key(1), 1, &[("0.3.1", &r), ("0.4.0", &r)]);
    assert!(plain.encode().starts_with(b"\0\0\0\x11peerpack/index/v1"));
    let mut entries = plain.versions.clone();
    entries[0].yanked = Some("leaks a token".into());
    entries[1].deprecated = Some(String::new());
    let marked =
        IndexRecord::sign(name("axum-service"), entries, 2, 1_790_000_002, &key(1)).unwrap();
    let bytes = marked.encode();
    assert!(bytes.starts_with(b"\0\0\0\x11peerpack/index/v2"));
    let back = IndexRecord::decode_verified(&bytes).unwrap();
    assert_eq!(back.versions[0].yanked.as_deref(), Some("leaks a token"));
    assert_eq!(back.versions[1].deprecated.as_deref(), Some(""));
    assert_eq!(back, marked);
    assert_eq!(plain.check_successor(&marked).unwrap(), IndexUpdate::Newer);

    // The second form with nothing yanked or deprecated is not canonical.
    let mut v2_plain = b"\0\0\0\x11peerpack/index/v2".to_vec();
    let body = &plain.encode()[21..plain.encode().len() - 64];
    let head = body.len() - 2 * (4 + 5 + 32);
    v2_plain.extend_from_slice(&body[..head]);
    for e in &plain.versions {
        let v = e.version.to_string();
        v2_plain.extend_from_slice(&(v.len() as u32).to_be_bytes());
        v2_plain.extend_from_slice(v.as_bytes());
        v2_plain.extend_from_slice(&e.record_hash.0);
        v2_plain.extend_from_slice(&[0, 0]);
    }
    v2_plain.extend_from_slice(&[0; 64]);
    assert_eq!(
        IndexRecord::decode(&v2_plain).unwrap_err(),
        DecodeError::NonCanonical
    );

    // Notices are bounded and free of control characters, when signing and when decoding.
    let mut long = plain.versions.clone();
    long[0].deprecated = Some("x".repeat(513));
    assert!(IndexRecord::sign(name("axum-service"), long, 3, 3, &key(1)).is_err());
    let mut ctl = plain.versions.clone();
    ctl[0].yanked = Some("bad\u{1b}[31m".into());
    assert!(IndexRecord::sign(name("axum-service"), ctl, 3, 3, &key(1)).is_err());
}

#[test]
fn index_sequence_going_backwards_is_refused() {
    let r = record(&key(1));
    let v1 = index(&key(1), 1, &[("0.3.1", &r)]);
    let v2 = index(&key(1), 2, &[("0.3.1", &r), ("0.4.0", &r)]);
    assert_eq!(v1.check_successor(&v2).unwrap(), IndexUpdate::Newer);
    assert_eq!(v2.check_successor(&v2.clone()).unwrap(), IndexUpdate::Same);
    let err = v2.check_successor(&v1).unwrap_err();
    assert_eq!(
        err,
        RecordError::Rollback {
            name: name("axum-service"),
            current: 2,
            offered: 1
        }
    );
    let other_at_2 = index(&key(1), 2, &[("0.3.1", &r)]);
    assert!(matches!(
        v2.check_successor(&other_at_2),
        Err(RecordError::Equivocation { seq: 2, .. })
    ));
    let fork = index(&key(2), 5, &[("0.3.1", &r)]);
    assert!(matches!(
        v2.check_successor(&fork),
        Err(RecordError::WrongPublisher { .. })
    ));
}

#[test]
fn tampered_index_is_refused() {
    let r = record(&key(1));
    let mut idx = index(&key(1), 1, &[("0.3.1", &r)]);
    idx.seq = 99;
    assert!(matches!(
        IndexRecord::decode_verified(&idx.encode()),
        Err(RecordError::BadSignature { .. })
    ));
}
