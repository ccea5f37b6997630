//! Property tests of every decoder: valid values (records, index records, curator lists,
//! manifests) survive encoding and decoding unchanged, and arbitrary or corrupted bytes never
//! panic a decoder. Case counts are small so the suite stays fast; the fuzz targets in `fuzz/`
//! (see docs/FUZZING.md) search much further.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use peerpack_core::record::{IndexEntry, RecordFields};
use peerpack_core::{
    ContentId, CuratorList, IndexRecord, Manifest, PackageName, PackageRecord, PublisherKey,
    RecordHash, Version, VersionReq,
};
use proptest::collection::{btree_map, btree_set, vec};
use proptest::option;
use proptest::prelude::*;

const CASES: u32 = 64;

fn name() -> impl Strategy<Value = PackageName> {
    "[a-z0-9][a-z0-9-]{0,63}".prop_map(|s| PackageName::new(&s).unwrap())
}

fn key() -> impl Strategy<Value = PublisherKey> {
    any::<[u8; 32]>().prop_map(|s| PublisherKey::from_secret_bytes(&s))
}

/// Semver versions, with pre-release and build parts now and then.
fn version() -> impl Strategy<Value = Version> {
    let ident = "[a-z][a-z0-9-]{0,6}|[1-9][0-9]{0,3}|0";
    (
        0..10_000u64,
        0..10_000u64,
        any::<u64>(),
        option::of(vec(ident, 1..3)),
        option::of("[0-9A-Za-z-]{1,8}"),
    )
        .prop_map(|(major, minor, patch, pre, build)| {
            let mut text = format!("{major}.{minor}.{patch}");
            if let Some(pre) = pre {
                text = format!("{text}-{}", pre.join("."));
            }
            if let Some(build) = build {
                text = format!("{text}+{build}");
            }
            text.parse().unwrap()
        })
}

/// Version requirements of one or two comparators.
fn requirement() -> impl Strategy<Value = VersionReq> {
    let comparator = (
        prop::sample::select(vec!["", "^", "~", "=", ">", ">=", "<", "<="]),
        0..100u64,
        option::of((0..100u64, option::of(0..100u64))),
    )
        .prop_map(|(op, major, rest)| match rest {
            None => format!("{op}{major}"),
            Some((minor, None)) => format!("{op}{major}.{minor}"),
            Some((minor, Some(patch))) => format!("{op}{major}.{minor}.{patch}"),
        });
    prop_oneof![
        Just("*".to_owned()),
        comparator.clone(),
        (comparator.clone(), comparator).prop_map(|(a, b)| format!("{a}, {b}")),
    ]
    .prop_map(|text| text.parse().unwrap())
}

/// Text without control characters that is not blank; `multiline` also allows `\n` and `\t`.
fn text(max_rest: usize, multiline: bool) -> impl Strategy<Value = String> {
    let rest = if multiline {
        format!("([^\\p{{Cc}}]|\n|\t){{0,{max_rest}}}")
    } else {
        format!("[^\\p{{Cc}}]{{0,{max_rest}}}")
    };
    proptest::string::string_regex(&format!("[A-Za-z0-9\u{e9}\u{1D11E}]{rest}")).unwrap()
}

fn keywords(max: usize) -> impl Strategy<Value = Vec<String>> {
    btree_set("[a-z0-9][a-z0-9-]{0,31}", 0..=max).prop_map(|s| s.into_iter().collect())
}

fn manifest() -> impl Strategy<Value = Manifest> {
    let url = "https?://[^\\p{Cc}\\s]{1,60}";
    let path = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}){0,3}";
    (
        (name(), version(), text(300, true), text(40, false)),
        (
            vec(text(60, false), 1..4),
            keywords(5),
            keywords(8),
            option::of(url),
            option::of(url),
            option::of(path),
        ),
        btree_map(name(), requirement(), 0..6),
    )
        .prop_map(
            |(
                (name, version, description, license),
                (authors, categories, tags, homepage, repository, readme),
                mut dependencies,
            )| {
                dependencies.remove(&name);
                Manifest {
                    name,
                    version,
                    description,
                    license,
                    authors,
                    categories,
                    tags,
                    homepage,
                    repository,
                    readme,
                    dependencies,
                }
            },
        )
        .prop_filter("a valid manifest", |m| m.validate().is_ok())
}

fn record() -> impl Strategy<Value = PackageRecord> {
    (
        manifest(),
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        key(),
    )
        .prop_map(|(manifest, id, archive_size, seq, published_at, key)| {
            let fields = RecordFields {
                manifest,
                content_id: ContentId::from_bytes(id),
                archive_size,
                seq,
                published_at,
            };
            PackageRecord::sign(fields, &key).unwrap()
        })
}

fn index() -> impl Strategy<Value = IndexRecord> {
    (
        name(),
        vec((version(), any::<[u8; 32]>()), 0..24),
        any::<u64>(),
        any::<u64>(),
        key(),
    )
        .prop_map(|(name, versions, seq, updated_at, key)| {
            let versions = versions
                .into_iter()
                .map(|(version, hash)| IndexEntry::new(version, RecordHash(hash)))
                .collect();
            IndexRecord::sign(name, versions, seq, updated_at, &key).unwrap()
        })
}

fn curator_list() -> impl Strategy<Value = CuratorList> {
    (
        btree_map(name(), key().prop_map(|k| k.public()), 0..24),
        any::<u64>(),
        any::<u64>(),
        key(),
    )
        .prop_map(|(entries, seq, updated_at, key)| {
            CuratorList::sign(entries, seq, updated_at, &key).unwrap()
        })
}

/// The manifest as `peerpack.toml` text.
fn to_toml(m: &Manifest) -> String {
    use toml::{Table, Value};
    let strings = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
    let mut package = Table::new();
    package.insert("name".into(), Value::String(m.name.to_string()));
    package.insert("version".into(), Value::String(m.version.to_string()));
    package.insert("description".into(), Value::String(m.description.clone()));
    package.insert("license".into(), Value::String(m.license.clone()));
    package.insert("authors".into(), strings(&m.authors));
    package.insert("categories".into(), strings(&m.categories));
    package.insert("tags".into(), strings(&m.tags));
    for (key, value) in [
        ("homepage", &m.homepage),
        ("repository", &m.repository),
        ("readme", &m.readme),
    ] {
        if let Some(v) = value {
            package.insert(key.into(), Value::String(v.clone()));
        }
    }
    let dependencies: Table = m
        .dependencies
        .iter()
        .map(|(n, r)| (n.to_string(), Value::String(r.to_string())))
        .collect();
    let mut top = Table::new();
    top.insert("package".into(), Value::Table(package));
    top.insert("dependencies".into(), Value::Table(dependencies));
    toml::to_string(&top).unwrap()
}

/// Arbitrary changes to `bytes`: (position, value) pairs and a cut.
fn corrupt(bytes: &[u8], changes: &[(usize, u8)], cut: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for (i, v) in changes {
        let i = i % b.len();
        b[i] = *v;
    }
    b.truncate(b.len() - cut % (b.len() + 1));
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn package_records_round_trip(r in record()) {
        let bytes = r.encode();
        let back = PackageRecord::decode_verified(&bytes).unwrap();
        prop_assert_eq!(&back, &r);
        prop_assert_eq!(back.encode(), bytes);
        prop_assert_eq!(back.hash(), r.hash());
    }

    #[test]
    fn index_records_round_trip(i in index()) {
        let bytes = i.encode();
        let back = IndexRecord::decode_verified(&bytes).unwrap();
        prop_assert_eq!(&back, &i);
        prop_assert_eq!(back.encode(), bytes);
    }

    #[test]
    fn curator_lists_round_trip(l in curator_list()) {
        let bytes = l.encode();
        let back = CuratorList::decode_verified(&bytes).unwrap();
        prop_assert_eq!(&back, &l);
        prop_assert_eq!(back.encode(), bytes);
    }

    #[test]
    fn manifests_round_trip_through_toml(m in manifest()) {
        let text = to_toml(&m);
        let back = Manifest::parse(&text, Path::new("peerpack.toml"));
        prop_assert_eq!(back.as_ref().ok(), Some(&m), "{}\n{:?}", text, back);
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_decoder(bytes in vec(any::<u8>(), 0..1024)) {
        // Whatever decodes is canonical.
        if let Ok(r) = PackageRecord::decode(&bytes) {
            prop_assert_eq!(r.encode(), bytes.clone());
        }
        if let Ok(i) = IndexRecord::decode(&bytes) {
            prop_assert_eq!(i.encode(), bytes.clone());
        }
        if let Ok(l) = CuratorList::decode(&bytes) {
            prop_assert_eq!(l.encode(), bytes.clone());
        }
        let _ = PackageRecord::decode_verified(&bytes);
        let _ = IndexRecord::decode_verified(&bytes);
        let _ = CuratorList::decode_verified(&bytes);
        let _ = Manifest::parse(&String::from_utf8_lossy(&bytes), Path::new("peerpack.toml"));
    }

    #[test]
    fn corrupted_encodings_never_panic_a_decoder(
        r in record(),
        i in index(),
        l in curator_list(),
        changes in vec((any::<usize>(), any::<u8>()), 1..4),
        cut in 0..64usize,
    ) {
        let b = corrupt(&r.encode(), &changes, cut);
        if let Ok(back) = PackageRecord::decode(&b) {
            prop_assert_eq!(back.encode(), b.clone());
        }
        let b = corrupt(&i.encode(), &changes, cut);
        if let Ok(back) = IndexRecord::decode(&b) {
            prop_assert_eq!(back.encode(), b.clone());
        }
        let b = corrupt(&l.encode(), &changes, cut);
        if let Ok(back) = CuratorList::decode(&b) {
            prop_assert_eq!(back.encode(), b.clone());
        }
    }
}

#[test]
fn the_toml_writer_gives_manifests_the_parser_takes() {
    // to_toml writes `[dependencies]` even when it is empty.
    let mut deps = BTreeMap::new();
    deps.insert(
        PackageName::new("dep").unwrap(),
        VersionReq::parse("^1").unwrap(),
    );
    let m = Manifest {
        name: PackageName::new("x").unwrap(),
        version: Version::new(1, 0, 0),
        description: "d".into(),
        license: "MIT".into(),
        authors: vec!["a".into()],
        categories: Vec::new(),
        tags: Vec::new(),
        homepage: None,
        repository: None,
        readme: None,
        dependencies: BTreeMap::new(),
    };
    let parsed = Manifest::parse(&to_toml(&m), Path::new("peerpack.toml")).unwrap();
    assert_eq!(parsed, m);
    let m = Manifest {
        dependencies: deps,
        ..m
    };
    let parsed = Manifest::parse(&to_toml(&m), Path::new("peerpack.toml")).unwrap();
    assert_eq!(parsed, m);
}
