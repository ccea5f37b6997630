//! Writes seed inputs for every fuzz target into `fuzz/corpus/<target>/` (or into the
//! directory given as the first argument): real records signed with fixed keys, the example
//! packs' manifests and archives, a few hand-built tar streams that exercise links, GNU long
//! names and PAX headers, and every blob and sync message.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! ```
//!
//! Then minimise each corpus with `cargo +nightly fuzz cmin TARGET` (see docs/FUZZING.md).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use futures::executor::block_on;
use peerpack_core::archive::pack;
use peerpack_core::limits::*;
use peerpack_core::record::{IndexEntry, RecordFields};
use peerpack_core::{
    ContentId, CuratorList, IndexRecord, Manifest, PackageName, PackageRecord, PublisherKey,
    Version, VersionReq,
};
use peerpack_net::blob::{BlobCodec, BlobRequest, BlobResponse, MAX_CHUNK};
use peerpack_net::p2p::StreamProtocol;
use peerpack_net::p2p::request_response::Codec;
use peerpack_net::sync::{self, SyncRequest, SyncResponse};
use serde_bytes::ByteBuf;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Corpus {
    root: PathBuf,
    written: usize,
}

impl Corpus {
    fn add(&mut self, target: &str, name: &str, bytes: &[u8]) -> io::Result<()> {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(format!("seed-{name}")), bytes)?;
        self.written += 1;
        Ok(())
    }
}

fn key(seed: u8) -> PublisherKey {
    PublisherKey::from_secret_bytes(&[seed; 32])
}

fn name(s: &str) -> Result<PackageName> {
    Ok(PackageName::new(s)?)
}

/// A 4-byte UTF-8 character: the most bytes a character can take.
fn wide(n: usize) -> String {
    std::iter::repeat_n('\u{1D11E}', n).collect()
}

fn padded(prefix: String, len: usize, fill: char) -> String {
    let mut s = prefix;
    while s.len() < len {
        s.push(fill);
    }
    s
}

/// A manifest with every field at its limit, in multi-byte characters where characters count.
fn largest_manifest() -> Result<Manifest> {
    let req: VersionReq = padded("=1.0.0-".into(), MAX_REQ_LEN, 'b').parse()?;
    let mut dependencies = BTreeMap::new();
    for d in 0..MAX_DEPENDENCIES {
        dependencies.insert(
            name(&padded(format!("d{d:03}-"), MAX_NAME_LEN, 'y'))?,
            req.clone(),
        );
    }
    let keywords = |c: char, n: usize| -> Vec<String> {
        (0..n)
            .map(|k| padded(format!("{c}{k}-"), MAX_KEYWORD_LEN, 'z'))
            .collect()
    };
    let url = format!("https://{}", wide(MAX_URL_LEN - 8));
    Ok(Manifest {
        name: name(&padded("p-".into(), MAX_NAME_LEN, 'x'))?,
        version: padded("1.0.0-".into(), MAX_REQ_LEN, 'a').parse()?,
        description: wide(MAX_DESCRIPTION_LEN),
        license: wide(MAX_LICENSE_LEN),
        authors: vec![wide(MAX_AUTHOR_LEN); MAX_AUTHORS],
        categories: keywords('c', MAX_CATEGORIES),
        tags: keywords('t', MAX_TAGS),
        homepage: Some(url.clone()),
        repository: Some(url),
        readme: Some(wide(MAX_URL_LEN)),
        dependencies,
    })
}

fn smallest_manifest() -> Result<Manifest> {
    Ok(Manifest {
        name: name("a")?,
        version: Version::new(0, 0, 0),
        description: "x".into(),
        license: "MIT".into(),
        authors: vec!["A".into()],
        categories: Vec::new(),
        tags: Vec::new(),
        homepage: None,
        repository: None,
        readme: None,
        dependencies: BTreeMap::new(),
    })
}

fn sign(
    manifest: Manifest,
    content_id: ContentId,
    size: u64,
    k: &PublisherKey,
) -> Result<PackageRecord> {
    Ok(PackageRecord::sign(
        RecordFields {
            manifest,
            content_id,
            archive_size: size,
            seq: 1,
            published_at: 1_790_000_000,
        },
        k,
    )?)
}

/// A tar stream built with GNU headers, as `archive::pack` writes them.
fn tar_of(build: impl FnOnce(&mut tar::Builder<Vec<u8>>) -> io::Result<()>) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b)?;
    Ok(b.into_inner()?)
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h
}

fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, data.len() as u64, mode);
    b.append_data(&mut h, path, data)
}

fn dir(b: &mut tar::Builder<Vec<u8>>, path: &str) -> io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0, 0o755);
    b.append_data(&mut h, path, io::empty())
}

fn link(
    b: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    path: &str,
    to: &str,
) -> io::Result<()> {
    let mut h = header(kind, 0, 0o777);
    b.append_link(&mut h, path, to)
}

/// Hand-built tar streams: what packing never writes but extraction must handle.
fn crafted_tars() -> Result<Vec<(&'static str, Vec<u8>)>> {
    let long = format!("{}/file.txt", "d".repeat(150));
    Ok(vec![
        (
            "links",
            tar_of(|b| {
                dir(b, "src")?;
                file(b, "src/main.rs", b"fn main() {}\n", 0o644)?;
                file(b, "run.sh", b"#!/bin/sh\n", 0o755)?;
                link(b, tar::EntryType::Symlink, "src/alias.rs", "main.rs")?;
                link(b, tar::EntryType::Symlink, "up", "src/../run.sh")?;
                link(b, tar::EntryType::Link, "copy.rs", "src/main.rs")
            })?,
        ),
        (
            "long-names",
            tar_of(|b| {
                file(b, &long, b"long\n", 0o644)?;
                link(
                    b,
                    tar::EntryType::Symlink,
                    &format!("{}/l", "e".repeat(120)),
                    &format!("../{long}"),
                )
            })?,
        ),
        (
            "pax",
            tar_of(|b| {
                b.append_pax_extensions([
                    ("path", "pax/renamed.txt".as_bytes()),
                    ("size", "3".as_bytes()),
                ])?;
                file(b, "ignored-name", b"abc", 0o644)?;
                b.append_pax_extensions([("comment", "hello".as_bytes())])?;
                file(b, "after.txt", b"after\n", 0o644)
            })?,
        ),
        (
            "escape",
            tar_of(|b| {
                link(b, tar::EntryType::Symlink, "out", "..")?;
                file(b, "out/x", b"x", 0o644)
            })?,
        ),
        (
            "dup-dirs",
            tar_of(|b| {
                dir(b, "a")?;
                dir(b, "a/")?;
                dir(b, "./a/b")?;
                file(b, "a/b/c", &[0u8; 1500], 0o600)
            })?,
        ),
    ])
}

fn write_all(out: &mut Corpus, packs: &Path) -> Result<()> {
    let publisher = key(1);
    let curator = key(2);

    // Manifests and archives of the example packs.
    let mut records = Vec::new();
    let mut pack_dirs: Vec<PathBuf> = fs::read_dir(packs)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    pack_dirs.sort();
    for dir in &pack_dirs {
        let label = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("pack")
            .to_owned();
        out.add(
            "manifest_parse",
            &label,
            &fs::read(dir.join("peerpack.toml"))?,
        )?;
        let (archive, summary) = pack(dir)?;
        out.add(
            "archive_extract",
            &format!("{label}-zstd"),
            &[&[0u8][..], &archive].concat(),
        )?;
        let tar_bytes = zstd::stream::decode_all(&archive[..])?;
        out.add(
            "archive_extract",
            &format!("{label}-tar"),
            &[&[1u8][..], &tar_bytes].concat(),
        )?;
        records.push(sign(
            summary.manifest,
            summary.content_id,
            summary.size,
            &publisher,
        )?);
    }
    for (label, tar_bytes) in crafted_tars()? {
        out.add("archive_extract", label, &[&[3u8][..], &tar_bytes].concat())?;
    }
    out.add(
        "manifest_parse",
        "all-keys",
        br#"[package]
name = "every-key"
version = "1.0.0-rc.1+build.5"
description = """Two
lines"""
license = "MIT OR Apache-2.0"
authors = ["Ada <ada@example.org>", 'Grace']
categories = ["cli", "web"]
tags = ["a-b", "0day"]
homepage = "https://example.org"
repository = "http://example.org/x"
readme = "docs/README.md"

[dependencies]
rust-cli = "^1.2"
axum-service = ">=0.3, <0.5"
github-actions-ci = "*"
python-package = "~2.1.0-beta"
"#,
    )?;

    // Package records: the examples, the smallest and the largest the format allows.
    records.push(sign(smallest_manifest()?, ContentId::of(b""), 0, &key(3))?);
    let largest = sign(largest_manifest()?, ContentId::of(b"x"), u64::MAX, &key(4))?;
    assert!(largest.encode().len() > 60_000 && largest.encode().len() <= MAX_RECORD_SIZE);
    records.push(largest);
    for r in &records {
        let bytes = r.encode();
        assert_eq!(PackageRecord::decode_verified(&bytes)?, *r);
        out.add(
            "record_decode",
            &format!("{}-{}", r.name(), r.version()),
            &bytes,
        )?;
    }

    // Index records: one per example, an empty one and a long one.
    for r in &records[..pack_dirs.len()] {
        let versions = (0..4)
            .map(|minor| {
                let mut e = IndexEntry::new(
                    Version::new(r.version().major, minor, r.version().patch),
                    r.hash(),
                );
                // The second form: one version yanked, one deprecated.
                if minor == 1 {
                    e.yanked = Some("published by mistake".into());
                }
                if minor == 2 {
                    e.deprecated = Some("use the 3.x line".into());
                }
                e
            })
            .collect();
        let index = IndexRecord::sign(r.name().clone(), versions, 3, 1_790_000_000, &publisher)?;
        out.add("index_decode", r.name().as_str(), &index.encode())?;
    }
    let empty = IndexRecord::sign(name("empty")?, Vec::new(), 0, 0, &publisher)?;
    out.add("index_decode", "empty", &empty.encode())?;
    let versions = (0..200u64)
        .map(|i| {
            IndexEntry::new(
                format!("{}.{}.{}-pre.{i}", i / 50, i % 7, i % 3)
                    .parse()
                    .unwrap_or(Version::new(i, 0, 0)),
                peerpack_core::RecordHash([i as u8; 32]),
            )
        })
        .collect();
    let long = IndexRecord::sign(
        name("many-versions")?,
        versions,
        u64::MAX,
        u64::MAX,
        &publisher,
    )?;
    out.add("index_decode", "many", &long.encode())?;
    for bytes in [empty.encode(), long.encode()] {
        IndexRecord::decode_verified(&bytes)?;
    }

    // Curator lists: the examples' owners, an empty list, a full one.
    let owners: BTreeMap<_, _> = records
        .iter()
        .map(|r| (r.name().clone(), r.publisher))
        .collect();
    let list = CuratorList::sign(owners, 5, 1_790_000_000, &curator)?;
    out.add("curator_decode", "examples", &list.encode())?;
    let empty = CuratorList::sign(BTreeMap::new(), 0, 0, &curator)?;
    out.add("curator_decode", "empty", &empty.encode())?;
    let mut full = BTreeMap::new();
    for i in 0..MAX_CURATOR_ENTRIES {
        full.insert(
            name(&format!("pkg-{i:04}"))?,
            key((i % 250) as u8 + 1).public(),
        );
    }
    let full = CuratorList::sign(full, u64::MAX, u64::MAX, &curator)?;
    out.add("curator_decode", "full", &full.encode())?;
    for l in [&list, &empty, &full] {
        CuratorList::decode_verified(&l.encode())?;
    }

    // Blob exchange: every request and response, as the codec writes them.
    let protocol = StreamProtocol::new(peerpack_net::blob::PROTOCOL);
    let id = ByteBuf::from(records[0].content_id.as_bytes().to_vec());
    let requests = [
        (
            "outline",
            BlobRequest::Outline {
                content_id: id.clone(),
            },
        ),
        (
            "range",
            BlobRequest::Range {
                content_id: id.clone(),
                offset: 1 << 20,
                length: MAX_CHUNK,
            },
        ),
        (
            "range-short-id",
            BlobRequest::Range {
                content_id: ByteBuf::from(vec![9; 5]),
                offset: 0,
                length: 1,
            },
        ),
    ];
    let responses = [
        (
            "outline",
            BlobResponse::Outline {
                total_size: 3 << 20,
                values: ByteBuf::from(vec![7u8; 96]),
            },
        ),
        (
            "chunk",
            BlobResponse::Chunk {
                offset: 0,
                total_size: 300,
                data: ByteBuf::from(vec![5u8; 300]),
            },
        ),
        ("not-found", BlobResponse::NotFound),
        (
            "refused",
            BlobResponse::Refused("busy: try again in 2 s (\u{e9})".into()),
        ),
    ];
    block_on(async {
        for (label, req) in requests {
            let mut wire = Vec::new();
            BlobCodec.write_request(&protocol, &mut wire, req).await?;
            out.add("blob_codec", &format!("request-{label}"), &wire)?;
        }
        for (label, res) in responses {
            let mut wire = Vec::new();
            BlobCodec.write_response(&protocol, &mut wire, res).await?;
            out.add("blob_codec", &format!("response-{label}"), &wire)?;
        }
        io::Result::Ok(())
    })?;

    // Catalogue sync: every request and response through the CBOR codec, with real records.
    let protocol = StreamProtocol::new(sync::PROTOCOL);
    let mut small: Vec<&PackageRecord> = records[..pack_dirs.len()].iter().collect();
    small.sort_by_key(|r| sync::cursor(r));
    let requests = [
        ("summary", SyncRequest::Summary),
        (
            "page-start",
            SyncRequest::Page {
                after: None,
                limit: sync::MAX_PAGE,
            },
        ),
        (
            "page-after",
            SyncRequest::Page {
                after: Some(sync::cursor(small[0])),
                limit: 3,
            },
        ),
    ];
    let responses = [
        (
            "summary",
            SyncResponse::Summary {
                count: 6,
                digest: ByteBuf::from(vec![0xa5; 32]),
            },
        ),
        ("page", sync::page(small.iter().copied(), 4)),
        ("page-last", sync::page(small[4..].iter().copied(), 4)),
        ("error", SyncResponse::Error("busy".into())),
    ];
    block_on(async {
        for (label, req) in requests {
            let mut wire = Vec::new();
            sync::codec()
                .write_request(&protocol, &mut wire, req)
                .await?;
            out.add("sync_codec", &format!("request-{label}"), &wire)?;
        }
        for (label, res) in responses {
            let mut wire = Vec::new();
            sync::codec()
                .write_response(&protocol, &mut wire, res)
                .await?;
            out.add("sync_codec", &format!("response-{label}"), &wire)?;
        }
        io::Result::Ok(())
    })?;
    Ok(())
}

fn main() -> Result<()> {
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| fuzz_dir.join("corpus"));
    let mut out = Corpus { root, written: 0 };
    write_all(&mut out, &fuzz_dir.join("../examples/packs"))?;
    println!("wrote {} seeds under {}", out.written, out.root.display());
    Ok(())
}
