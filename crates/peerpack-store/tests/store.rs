//! The store: ownership, persistence across reopen, search ranking and filters, blob integrity.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use peerpack_core::record::{IndexEntry, RecordError, RecordFields};
use peerpack_core::{
    ContentId, IndexRecord, Manifest, PackageName, PackageRecord, PublisherKey, Version,
};
use peerpack_store::{Inserted, SearchQuery, Store, blobs, db};

fn key(seed: u8) -> PublisherKey {
    PublisherKey::from_secret_bytes(&[seed; 32])
}

struct Pkg<'a> {
    name: &'a str,
    version: &'a str,
    description: &'a str,
    tags: &'a [&'a str],
    categories: &'a [&'a str],
}

fn record(p: &Pkg<'_>, key: &PublisherKey, seq: u64) -> PackageRecord {
    let quote = |xs: &[&str]| {
        xs.iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = format!(
        "[package]\nname = {:?}\nversion = {:?}\ndescription = {:?}\nlicense = \"MIT\"\nauthors = [\"Test <t@example.org>\"]\ntags = [{}]\ncategories = [{}]\n",
        p.name,
        p.version,
        p.description,
        quote(p.tags),
        quote(p.categories)
    );
    let manifest = Manifest::parse(&text, Path::new("peerpack.toml")).unwrap();
    PackageRecord::sign(
        RecordFields {
            manifest,
            content_id: ContentId::of(format!("{}@{}", p.name, p.version).as_bytes()),
            archive_size: 100,
            seq,
            published_at: 1_790_000_000,
        },
        key,
    )
    .unwrap()
}

const CATALOGUE: &[Pkg<'static>] = &[
    Pkg {
        name: "rust-cli",
        version: "1.0.0",
        description: "Command-line application template with clap and anyhow",
        tags: &["rust", "clap"],
        categories: &["cli"],
    },
    Pkg {
        name: "rust-cli-extras",
        version: "0.2.0",
        description: "Extra rust cli snippets: completions, man pages, rust cli testing",
        tags: &["rust", "cli", "rust-cli"],
        categories: &["cli"],
    },
    Pkg {
        name: "axum-service",
        version: "0.3.1",
        description: "HTTP service template built on axum with tracing",
        tags: &["rust", "http", "axum"],
        categories: &["web"],
    },
    Pkg {
        name: "python-package",
        version: "2.1.0",
        description: "Python package with pyproject, pytest and ruff",
        tags: &["python", "pytest"],
        categories: &["library"],
    },
    Pkg {
        name: "react-components",
        version: "0.9.0",
        description: "React component library with Storybook and Vitest",
        tags: &["react", "typescript"],
        categories: &["web", "library"],
    },
    Pkg {
        name: "github-actions-ci",
        version: "1.4.0",
        description: "Continuous integration workflows for GitHub Actions",
        tags: &["ci", "github"],
        categories: &["ci"],
    },
];

fn filled_store(dir: &Path) -> Store {
    let mut store = Store::open(dir).unwrap();
    let records: Vec<_> = CATALOGUE.iter().map(|p| record(p, &key(1), 1)).collect();
    for r in store.insert_records(&records, None).unwrap() {
        assert_eq!(r.unwrap(), Inserted::New);
    }
    store
}

fn search(store: &Store, text: &str, category: Option<&str>, tags: &[&str]) -> Vec<String> {
    store
        .search(&SearchQuery {
            text: text.into(),
            category: category.map(Into::into),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            limit: 10,
        })
        .unwrap()
        .into_iter()
        .map(|h| h.name)
        .collect()
}

fn squat_record(seq: u64) -> PackageRecord {
    let base = record(&CATALOGUE[0], &key(2), seq);
    let mut manifest = base.manifest;
    manifest.version = Version::new(9, 0, 0);
    PackageRecord::sign(
        RecordFields {
            manifest,
            content_id: base.content_id,
            archive_size: 1,
            seq,
            published_at: 1,
        },
        &key(2),
    )
    .unwrap()
}

fn rust_cli() -> PackageName {
    PackageName::new("rust-cli").unwrap()
}

#[test]
fn another_keys_record_is_kept_as_a_claim_and_never_changes_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled_store(dir.path());
    let squat = squat_record(999);
    let outcome = store
        .db
        .insert_records(std::slice::from_ref(&squat), Some("peer-m"))
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    assert_eq!(outcome, Inserted::Disputed);
    let name = rust_cli();
    assert_eq!(store.db.owner(&name).unwrap(), Some(key(1).public()));
    assert_eq!(
        store.db.versions(&name).unwrap().len(),
        1,
        "the squatter's version was not stored"
    );
    let claims = store.db.claims(&name).unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].publisher, key(2).public());
    assert_eq!(claims[0].versions, vec![Version::new(9, 0, 0)]);
    assert_eq!(claims[0].peers, vec!["peer-m".to_owned()]);
    assert_eq!(store.db.disputed_names().unwrap(), vec![name.clone()]);
    // A squatter's index record with a huge seq changes nothing either.
    let idx = IndexRecord::sign(name.clone(), vec![], 1_000_000, 1, &key(2)).unwrap();
    assert_eq!(store.db.insert_index(&idx).unwrap(), Inserted::Disputed);
    assert_eq!(store.db.owner(&name).unwrap(), Some(key(1).public()));
    assert_eq!(store.db.claims(&name).unwrap()[0].seq, 1_000_000);
}

#[test]
fn a_versions_content_never_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled_store(dir.path());
    let known = record(&CATALOGUE[0], &key(1), 1);
    let changed = PackageRecord::sign(
        RecordFields {
            manifest: known.manifest.clone(),
            content_id: ContentId::of(b"other bytes"),
            archive_size: 100,
            seq: 50,
            published_at: 1,
        },
        &key(1),
    )
    .unwrap();
    let err = store.insert_record(&changed).unwrap_err();
    assert!(
        matches!(
            err,
            peerpack_store::Error::Db(db::Error::Refused(RecordError::VersionChanged(_)))
        ),
        "{err}"
    );
    // Same seq, different bytes (a re-signed description): equivocation, refused.
    let mut manifest = known.manifest.clone();
    manifest.description = "quietly different".into();
    let twin = PackageRecord::sign(
        RecordFields {
            manifest,
            content_id: known.content_id,
            archive_size: known.archive_size,
            seq: known.seq,
            published_at: known.published_at,
        },
        &key(1),
    )
    .unwrap();
    let err = store.insert_record(&twin).unwrap_err();
    assert!(
        matches!(
            err,
            peerpack_store::Error::Db(db::Error::Refused(RecordError::RecordEquivocation { .. }))
        ),
        "{err}"
    );
    let stored = store
        .db
        .record(&rust_cli(), &Version::new(1, 0, 0))
        .unwrap();
    assert_eq!(stored, Some(known));
}

#[test]
fn trust_moves_the_name_to_the_pinned_key_and_untrust_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled_store(dir.path());
    let name = rust_cli();
    assert!(store.trust(&name, &key(2).public()).unwrap());
    assert_eq!(
        store.db.name_state(&name).unwrap(),
        peerpack_store::NameState::Owned {
            owner: key(2).public(),
            source: peerpack_store::OwnerSource::Trusted
        }
    );
    assert!(store.db.versions(&name).unwrap().is_empty());
    let hits = store
        .search(&SearchQuery {
            text: "clap".into(),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert!(hits.iter().all(|h| h.name != "rust-cli"), "{hits:?}");
    // The former owner is now a claim, and its records are refused; the pinned key's accepted.
    assert_eq!(
        store.db.claims(&name).unwrap()[0].publisher,
        key(1).public()
    );
    assert_eq!(
        store
            .insert_record(&record(&CATALOGUE[0], &key(1), 2))
            .unwrap(),
        Inserted::Disputed
    );
    assert_eq!(
        store.insert_record(&squat_record(1)).unwrap(),
        Inserted::New
    );
    assert_eq!(store.db.trusted().unwrap().len(), 1);
    assert!(store.db.untrust(&name).unwrap());
    assert_eq!(
        store.db.name_state(&name).unwrap(),
        peerpack_store::NameState::Owned {
            owner: key(2).public(),
            source: peerpack_store::OwnerSource::FirstSeen
        }
    );
    assert!(store.db.trusted().unwrap().is_empty());
}

#[test]
fn several_claimants_at_once_make_a_name_contested_until_someone_chooses() {
    use peerpack_store::names::Seen;
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let name = rust_cli();
    let seen = |seq| Seen {
        seq,
        versions: vec![Version::new(1, 0, 0)],
        peers: vec!["p".into()],
    };
    let state = store
        .db
        .record_claims(
            &name,
            &[(key(1).public(), seen(1)), (key(2).public(), seen(999))],
        )
        .unwrap();
    assert_eq!(state, peerpack_store::NameState::Contested);
    assert_eq!(store.db.contested_names().unwrap(), vec![name.clone()]);
    // While contested, no record gets in, whoever signed it.
    assert_eq!(
        store
            .insert_record(&record(&CATALOGUE[0], &key(1), 1))
            .unwrap(),
        Inserted::Disputed
    );
    assert_eq!(store.db.owner(&name).unwrap(), None);
    // A lock file's key settles it.
    let state = store.db.adopt_owner(&name, &key(1).public()).unwrap();
    assert_eq!(state.owner(), Some(key(1).public()));
    assert!(store.db.contested_names().unwrap().is_empty());
    assert_eq!(
        store
            .insert_record(&record(&CATALOGUE[0], &key(1), 1))
            .unwrap(),
        Inserted::New
    );
    // One claimant alone is trusted on first use.
    let other = PackageName::new("axum-service").unwrap();
    let state = store
        .db
        .record_claims(&other, &[(key(3).public(), seen(1))])
        .unwrap();
    assert_eq!(state, peerpack_store::NameState::Unknown);
}

#[test]
fn a_trusted_curator_decides_and_an_untrusted_or_forged_list_does_not() {
    use peerpack_core::CuratorList;
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled_store(dir.path());
    let name = rust_cli();
    let curator = key(7);
    let list = |seq, owner: &PublisherKey| {
        CuratorList::sign(
            [(name.clone(), owner.public())].into_iter().collect(),
            seq,
            1,
            &curator,
        )
        .unwrap()
    };
    // Not trusted yet: stored, decides nothing.
    assert_eq!(
        store.insert_curator_list(&list(1, &key(2))).unwrap().0,
        Inserted::New
    );
    assert_eq!(store.db.owner(&name).unwrap(), Some(key(1).public()));
    // Trusted: the curated owner wins over the first-seen one.
    store.set_curators(vec![curator.public()]).unwrap();
    assert_eq!(
        store.db.name_state(&name).unwrap(),
        peerpack_store::NameState::Owned {
            owner: key(2).public(),
            source: peerpack_store::OwnerSource::Curator(curator.public())
        }
    );
    // A newer list moves it back; an older one is stale.
    assert_eq!(
        store.insert_curator_list(&list(2, &key(1))).unwrap().0,
        Inserted::Replaced
    );
    assert_eq!(store.db.owner(&name).unwrap(), Some(key(1).public()));
    assert_eq!(
        store.insert_curator_list(&list(1, &key(2))).unwrap().0,
        Inserted::Stale
    );
    // A tampered list is refused.
    let mut forged = list(3, &key(1));
    forged.entries.insert(name.clone(), key(2).public());
    let err = store.insert_curator_list(&forged).unwrap_err();
    assert!(
        matches!(
            err,
            peerpack_store::Error::Db(db::Error::Refused(RecordError::BadCuratorSignature { .. }))
        ),
        "{err}"
    );
    assert_eq!(store.db.owner(&name).unwrap(), Some(key(1).public()));
    // A pin beats the curator.
    store.trust(&name, &key(3).public()).unwrap();
    assert_eq!(store.db.owner(&name).unwrap(), Some(key(3).public()));
}

#[test]
fn forged_record_is_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let mut forged = record(&CATALOGUE[0], &key(1), 1);
    forged.manifest.description = "tampered after signing".into();
    let err = store.insert_record(&forged).unwrap_err();
    assert!(
        matches!(
            err,
            peerpack_store::Error::Db(db::Error::Refused(RecordError::BadSignature { .. }))
        ),
        "{err}"
    );
    assert_eq!(store.db.version_count().unwrap(), 0);
    assert_eq!(
        store.db.package_count().unwrap(),
        0,
        "a refused record claims no name"
    );
}

#[test]
fn newer_seq_replaces_and_older_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled_store(dir.path());
    let p = &CATALOGUE[2];
    assert_eq!(
        store.insert_record(&record(p, &key(1), 1)).unwrap(),
        Inserted::Unchanged
    );
    assert_eq!(
        store.insert_record(&record(p, &key(1), 3)).unwrap(),
        Inserted::Replaced
    );
    assert_eq!(
        store.insert_record(&record(p, &key(1), 2)).unwrap(),
        Inserted::Stale
    );
}

#[test]
fn store_survives_reopen_and_index_loss() {
    let dir = tempfile::tempdir().unwrap();
    let idx = {
        let mut store = filled_store(dir.path());
        let rec = record(&CATALOGUE[0], &key(1), 1);
        let idx = IndexRecord::sign(
            rec.name().clone(),
            vec![IndexEntry::new(rec.version().clone(), rec.hash())],
            1,
            1,
            &key(1),
        )
        .unwrap();
        assert_eq!(store.db.insert_index(&idx).unwrap(), Inserted::New);
        idx
    };
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.db.version_count().unwrap(), CATALOGUE.len() as u64);
    let name = PackageName::new("rust-cli").unwrap();
    assert_eq!(store.db.owner(&name).unwrap(), Some(key(1).public()));
    assert_eq!(store.db.index_record(&name).unwrap(), Some(idx));
    assert_eq!(search(&store, "axum", None, &[]), ["axum-service"]);
    drop(store);

    // The index is derived data: deleting it loses nothing.
    std::fs::remove_dir_all(dir.path().join(peerpack_store::INDEX_DIR)).unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.index.len(), CATALOGUE.len() as u64);
    assert_eq!(search(&store, "pytest", None, &[]), ["python-package"]);
}

#[test]
fn index_record_rollback_is_refused_by_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled_store(dir.path());
    let name = PackageName::new("rust-cli").unwrap();
    let at = |seq| IndexRecord::sign(name.clone(), vec![], seq, seq, &key(1)).unwrap();
    store.db.insert_index(&at(4)).unwrap();
    let err = store.db.insert_index(&at(3)).unwrap_err();
    assert!(err.to_string().contains("goes backwards"), "{err}");
    assert_eq!(store.db.index_record(&name).unwrap().unwrap().seq, 4);
}

#[test]
fn search_finds_by_word_tag_and_category() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    // A word from a description (stemmed: "workflows" matches "workflow").
    assert_eq!(search(&store, "workflow", None, &[]), ["github-actions-ci"]);
    assert_eq!(search(&store, "storybook", None, &[]), ["react-components"]);
    // Filters alone.
    let mut web = search(&store, "", Some("web"), &[]);
    web.sort();
    assert_eq!(web, ["axum-service", "react-components"]);
    assert_eq!(search(&store, "", None, &["python"]), ["python-package"]);
    // Text plus filters.
    assert_eq!(
        search(&store, "template", Some("web"), &["rust"]),
        ["axum-service"]
    );
    assert!(search(&store, "template", Some("ci"), &["python"]).is_empty());
    // Every word must match.
    assert!(search(&store, "react pytest", None, &[]).is_empty());
}

#[test]
fn names_match_by_prefix_and_with_typos_and_unknown_names_get_suggestions() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    let first = |q: &str| search(&store, q, None, &[]).first().cloned();
    // Prefixes of a name, whole words or not.
    assert_eq!(first("ax").as_deref(), Some("axum-service"));
    assert_eq!(first("axum-serv").as_deref(), Some("axum-service"));
    // Typos: a substitution, a swap, a missing letter.
    assert_eq!(first("axum-servise").as_deref(), Some("axum-service"));
    assert_eq!(first("pyhton-package").as_deref(), Some("python-package"));
    assert_eq!(first("rust-cl").as_deref(), Some("rust-cli"));
    // Too far from any name, and no word matches: nothing.
    assert!(search(&store, "zzqxw", None, &[]).is_empty());
    // "Did you mean": the nearest names, never the name itself.
    let similar = |n: &str| store.index.similar_names(n, 3).unwrap();
    assert_eq!(similar("axum-servise"), ["axum-service"]);
    assert!(similar("rust-clj").contains(&"rust-cli".to_owned()));
    assert!(!similar("rust-cli").contains(&"rust-cli".to_owned()));
    assert!(similar("zzqxw").is_empty());
    assert!(similar("NOT A NAME!").is_empty());
}

#[test]
fn exact_name_match_ranks_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    // rust-cli-extras mentions "rust" and "cli" far more often, but rust-cli is the name asked for.
    assert_eq!(
        search(&store, "rust cli", None, &[])
            .first()
            .map(String::as_str),
        Some("rust-cli")
    );
    assert_eq!(
        search(&store, "rust-cli", None, &[])
            .first()
            .map(String::as_str),
        Some("rust-cli")
    );
    assert_eq!(
        search(&store, "rust-cli-extras", None, &[])
            .first()
            .map(String::as_str),
        Some("rust-cli-extras")
    );
}

#[test]
fn search_shows_the_latest_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled_store(dir.path());
    let newer = Pkg {
        version: "1.1.0",
        ..CATALOGUE[0]
    };
    store.insert_record(&record(&newer, &key(1), 1)).unwrap();
    let hits = store
        .search(&SearchQuery {
            text: "rust-cli".into(),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(hits[0].version, "1.1.0");
    assert_eq!(
        hits.iter().filter(|h| h.name == "rust-cli").count(),
        1,
        "one document per name"
    );
}

#[test]
fn corrupted_blob_on_disk_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let data = b"archive bytes ".repeat(1000);
    let id = store.blobs.put(&data).unwrap();
    assert_eq!(id, ContentId::of(&data));
    assert_eq!(store.blobs.get(&id).unwrap(), data);
    assert_eq!(store.blobs.list().unwrap(), [id]);

    let path = store.blobs.path(&id);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5000] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    assert!(matches!(
        store.blobs.get(&id),
        Err(blobs::Error::Corrupt { .. })
    ));
    let err = store.blobs.verify(&id).unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
}

#[test]
fn blob_with_wrong_hash_is_never_visible() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let expected = ContentId::of(b"the real archive");
    let err = store
        .blobs
        .put_expecting(&expected, b"something else")
        .unwrap_err();
    assert!(matches!(err, blobs::Error::HashMismatch { .. }));
    assert!(!store.blobs.contains(&expected));
    assert!(store.blobs.list().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs/tmp"))
            .unwrap()
            .count(),
        0,
        "temp file cleaned up"
    );
}

#[test]
fn database_from_a_newer_peerpack_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peerpack.db");
    drop(db::Db::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = db::Db::open(&path).err().unwrap();
    assert!(err.to_string().contains("upgrade peerpack"), "{err}");
}

#[test]
fn a_flood_of_claimants_cannot_crowd_out_a_well_supported_claim() {
    use peerpack_store::names::{MAX_CLAIMANTS, Seen};
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled_store(dir.path());
    let name = rust_cli();
    let seen = |peers: &[&str]| Seen {
        seq: 1,
        versions: vec![Version::new(1, 0, 0)],
        peers: peers.iter().map(|p| p.to_string()).collect(),
    };
    // The real claimant, served by three peers.
    store
        .db
        .record_claims(&name, &[(key(50).public(), seen(&["a", "b", "c"]))])
        .unwrap();
    // Twenty throwaway keys, each served by one peer.
    for i in 0..20u8 {
        store
            .db
            .record_claims(&name, &[(key(100 + i).public(), seen(&["m"]))])
            .unwrap();
    }
    let claims = store.db.claims(&name).unwrap();
    assert_eq!(claims.len(), MAX_CLAIMANTS);
    assert!(
        claims.iter().any(|c| c.publisher == key(50).public()),
        "the well-supported claim was evicted"
    );
    assert_eq!(store.db.owner(&name).unwrap(), Some(key(1).public()));
}

#[test]
fn the_first_trusted_curator_decides_and_untrust_falls_back_to_it() {
    use peerpack_core::CuratorList;
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled_store(dir.path());
    let name = rust_cli();
    let list = |curator: &PublisherKey, seq, owner: &PublisherKey| {
        CuratorList::sign(
            [(name.clone(), owner.public())].into_iter().collect(),
            seq,
            1,
            curator,
        )
        .unwrap()
    };
    let (first, second) = (key(7), key(8));
    store
        .insert_curator_list(&list(&second, 1, &key(3)))
        .unwrap();
    store
        .insert_curator_list(&list(&first, 1, &key(2)))
        .unwrap();
    store
        .set_curators(vec![first.public(), second.public()])
        .unwrap();
    assert_eq!(store.db.owner(&name).unwrap(), Some(key(2).public()));
    // Equal seq, other bytes: an equivocation, refused; the list held stays.
    let err = store
        .insert_curator_list(&list(&first, 1, &key(3)))
        .unwrap_err();
    assert!(
        matches!(
            err,
            peerpack_store::Error::Db(db::Error::Refused(RecordError::CuratorEquivocation { .. }))
        ),
        "{err}"
    );
    assert_eq!(store.db.owner(&name).unwrap(), Some(key(2).public()));
    // A pin wins; removing it hands the name back to the first curator's owner.
    store.trust(&name, &key(4).public()).unwrap();
    assert_eq!(store.db.owner(&name).unwrap(), Some(key(4).public()));
    store.db.untrust(&name).unwrap();
    assert_eq!(
        store.db.name_state(&name).unwrap(),
        peerpack_store::NameState::Owned {
            owner: key(2).public(),
            source: peerpack_store::OwnerSource::Curator(first.public())
        }
    );
}

#[test]
fn the_catalogue_summary_follows_every_write_without_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled_store(dir.path());
    let check = |store: &Store| {
        assert_eq!(
            store.db.summary().unwrap(),
            store.db.compute_summary().unwrap()
        );
    };
    check(&store);
    assert_eq!(store.db.summary().unwrap().0, CATALOGUE.len() as u64);
    // A replaced record, a refused one, and an owner change that removes versions.
    store
        .insert_record(&record(&CATALOGUE[2], &key(1), 5))
        .unwrap();
    check(&store);
    let _ = store.insert_record(&squat_record(1));
    check(&store);
    store.trust(&rust_cli(), &key(2).public()).unwrap();
    check(&store);
    assert_eq!(store.db.summary().unwrap().0, CATALOGUE.len() as u64 - 1);
    // A store that lost its summary row fills it again on open.
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join("peerpack.db")).unwrap();
    conn.execute("DELETE FROM catalogue_summary", []).unwrap();
    drop(conn);
    let store = Store::open(dir.path()).unwrap();
    check(&store);
}

/// Search shows the version `install NAME` would pick: the highest release, not a newer
/// pre-release; a name with only pre-releases shows its highest one. Also after a reopen, when
/// the index is rebuilt from the database.
#[test]
fn search_shows_the_highest_release_over_a_newer_pre_release() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = |name, version| Pkg {
        name,
        version,
        description: "Template with releases and betas",
        tags: &[],
        categories: &[],
    };
    let shown = |store: &Store, name: &str| {
        store
            .search(&SearchQuery {
                text: name.into(),
                category: None,
                tags: Vec::new(),
                limit: 10,
            })
            .unwrap()
            .into_iter()
            .find(|h| h.name == name)
            .map(|h| h.version)
    };
    {
        let mut store = Store::open(dir.path()).unwrap();
        let records = [
            record(&pkg("betas", "1.0.0"), &key(1), 1),
            record(&pkg("betas", "2.0.0-beta.1"), &key(1), 2),
            record(&pkg("only-betas", "0.1.0-alpha.1"), &key(1), 1),
            record(&pkg("only-betas", "0.1.0-alpha.2"), &key(1), 2),
        ];
        for r in store.insert_records(&records, None).unwrap() {
            r.unwrap();
        }
        assert_eq!(shown(&store, "betas").as_deref(), Some("1.0.0"));
        assert_eq!(
            shown(&store, "only-betas").as_deref(),
            Some("0.1.0-alpha.2")
        );
    }
    std::fs::remove_dir_all(dir.path().join(peerpack_store::INDEX_DIR)).unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(shown(&store, "betas").as_deref(), Some("1.0.0"));
}

#[test]
fn one_process_at_a_time_opens_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap();
    let err = match Store::open(dir.path()) {
        Ok(_) => panic!("a second open of a store in use succeeded"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("in use by another peerpack process"), "{err}");
    drop(first);
    Store::open(dir.path()).expect("the store opens again once closed");
}

/// The version `hits` shows for `name`.
fn shown_version(store: &Store, name: &str) -> Option<String> {
    store
        .search(&SearchQuery {
            text: name.into(),
            limit: 10,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .find(|h| h.name == name)
        .map(|h| h.version)
}

#[test]
fn a_version_committed_but_never_indexed_is_indexed_at_the_next_open() {
    // A crash between the database commit and the index commit: the database has the new
    // version, the index does not, and both still hold the same number of packages (the old
    // check by document count could not see it).
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = filled_store(dir.path());
        let newer = Pkg {
            version: "1.1.0",
            ..CATALOGUE[0]
        };
        // Through the database alone: what a crash right after its commit leaves.
        store.db.insert_record(&record(&newer, &key(1), 1)).unwrap();
        assert_eq!(shown_version(&store, "rust-cli").as_deref(), Some("1.0.0"));
        assert_eq!(store.index.len(), store.db.package_count().unwrap());
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(shown_version(&store, "rust-cli").as_deref(), Some("1.1.0"));
    assert_eq!(
        store.db.search_changes_after(0).unwrap().0,
        Vec::<String>::new(),
        "applied changes are pruned"
    );
}

#[test]
fn every_write_through_the_store_reaches_the_index_and_is_numbered() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled_store(dir.path());
    store.take_changed();
    let before = store.index.applied().unwrap();
    let newer = Pkg {
        version: "2.0.0",
        ..CATALOGUE[1]
    };
    store.insert_record(&record(&newer, &key(1), 1)).unwrap();
    assert!(store.index.applied().unwrap() > before);
    assert_eq!(
        shown_version(&store, CATALOGUE[1].name).as_deref(),
        Some("2.0.0")
    );
    // A write made behind the store's back is applied by the next catch-up.
    let third = Pkg {
        version: "3.0.0",
        ..CATALOGUE[1]
    };
    store.db.insert_record(&record(&third, &key(1), 1)).unwrap();
    assert_eq!(store.catch_up().unwrap(), 1);
    assert_eq!(
        shown_version(&store, CATALOGUE[1].name).as_deref(),
        Some("3.0.0")
    );
    assert_eq!(store.take_changed().len(), 2);
}

// Writes made while the index is deferred are read at once from the database, and reach
// search together at the next catch-up, in one commit; a reopen catches up what a crash left.
#[test]
fn deferred_writes_reach_search_together_at_the_next_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled_store(dir.path());
    store.take_changed();
    let before = store.index.applied().unwrap();
    store.defer_index = true;
    for v in ["2.0.0", "2.1.0"] {
        let newer = Pkg {
            version: v,
            ..CATALOGUE[1]
        };
        store.insert_record(&record(&newer, &key(1), 1)).unwrap();
    }
    assert_eq!(store.index.applied(), Some(before), "the index waited");
    assert_eq!(
        shown_version(&store, CATALOGUE[1].name).as_deref(),
        Some(CATALOGUE[1].version),
        "search still shows the old version"
    );
    let name = PackageName::new(CATALOGUE[1].name).unwrap();
    assert_eq!(
        store
            .db
            .latest(&name)
            .unwrap()
            .unwrap()
            .version()
            .to_string(),
        "2.1.0",
        "reads see the new records at once"
    );
    assert_eq!(store.take_changed(), vec![name.clone(), name.clone()]);
    store.defer_index = false;
    assert_eq!(store.catch_up().unwrap(), 1, "one name, one commit");
    assert_eq!(
        shown_version(&store, CATALOGUE[1].name).as_deref(),
        Some("2.1.0")
    );
    assert!(store.take_changed().is_empty(), "each change is noted once");

    // A deferred write the process never indexed (it was killed) is indexed at the next open.
    store.defer_index = true;
    let third = Pkg {
        version: "3.0.0",
        ..CATALOGUE[1]
    };
    store.insert_record(&record(&third, &key(1), 1)).unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        shown_version(&store, CATALOGUE[1].name).as_deref(),
        Some("3.0.0")
    );
}

#[test]
fn an_atomic_write_that_fails_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled_store(dir.path());
    let summary = store.db.summary().unwrap();
    let newer = Pkg {
        version: "1.5.0",
        ..CATALOGUE[0]
    };
    let rec = record(&newer, &key(1), 1);
    let result: Result<(), db::Error> = store.db.atomically(|db| {
        assert_eq!(db.insert_record(&rec).unwrap(), Inserted::New);
        // Fails after the record went in: a rollback must take the record with it.
        db.insert_index(&IndexRecord::sign(rec.name().clone(), vec![], 9, 9, &key(1)).unwrap())?;
        db.insert_index(&IndexRecord::sign(rec.name().clone(), vec![], 8, 8, &key(1)).unwrap())?;
        Ok(())
    });
    assert!(result.is_err());
    assert_eq!(store.db.record(rec.name(), rec.version()).unwrap(), None);
    assert_eq!(store.db.index_record(rec.name()).unwrap(), None);
    assert_eq!(store.db.summary().unwrap(), summary);
    // And the store is usable afterwards.
    store.insert_record(&rec).unwrap();
    assert_eq!(shown_version(&store, "rust-cli").as_deref(), Some("1.5.0"));
}

/// A signed record of `name` `version` that depends on `deps` (name, requirement).
fn depending(name: &str, version: &str, deps: &[(&str, &str)]) -> PackageRecord {
    let mut text = format!(
        "[package]\nname = {name:?}\nversion = {version:?}\ndescription = \"d\"\nlicense = \"MIT\"\nauthors = [\"a\"]\n[dependencies]\n"
    );
    for (d, req) in deps {
        text.push_str(&format!("{d} = {req:?}\n"));
    }
    PackageRecord::sign(
        RecordFields {
            manifest: Manifest::parse(&text, Path::new("peerpack.toml")).unwrap(),
            content_id: ContentId::of(format!("{name}@{version}").as_bytes()),
            archive_size: 100,
            seq: 1,
            published_at: 1_790_000_000,
        },
        &key(1),
    )
    .unwrap()
}

#[test]
fn dependents_are_indexed_and_filled_in_for_an_older_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = filled_store(dir.path());
    let records = [
        depending(
            "web-app",
            "1.0.0",
            &[("rust-cli", "^1"), ("github-actions-ci", "^1")],
        ),
        depending("web-app", "1.1.0", &[("rust-cli", "^1.0")]),
        depending("web-app", "2.0.0-rc.1", &[("rust-cli", ">=1")]),
        depending("tool-kit", "0.1.0", &[("rust-cli", "*")]),
        depending("alone", "1.0.0", &[]),
    ];
    for r in store.insert_records(&records, None).unwrap() {
        assert_eq!(r.unwrap(), Inserted::New);
    }
    let expect = |store: &Store| {
        let deps = store.db.dependents("rust-cli", 10).unwrap();
        let shown: Vec<(String, String, String, usize)> = deps
            .into_iter()
            .map(|d| (d.name, d.version.to_string(), d.requirement, d.versions))
            .collect();
        // In name order; the newest release (not the pre-release) and its requirement.
        assert_eq!(
            shown,
            [
                ("tool-kit".into(), "0.1.0".into(), "*".into(), 1),
                ("web-app".into(), "1.1.0".into(), "^1.0".into(), 3),
            ]
        );
        assert_eq!(store.db.dependents("rust-cli", 1).unwrap().len(), 1);
        assert_eq!(
            store.db.dependents("github-actions-ci", 10).unwrap()[0].name,
            "web-app"
        );
        assert!(store.db.dependents("alone", 10).unwrap().is_empty());
    };
    expect(&store);
    drop(store);

    // A store from before the table: opening it fills the table from the records.
    let conn = rusqlite::Connection::open(dir.path().join("peerpack.db")).unwrap();
    conn.execute_batch("DROP TABLE dependencies; PRAGMA user_version = 10;")
        .unwrap();
    drop(conn);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.db.schema_version().unwrap(), 11);
    expect(&store);
}

#[test]
fn facets_count_every_match_not_only_those_returned() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    let all = SearchQuery {
        limit: 1,
        ..Default::default()
    };
    let f = store.index.facets(&all, 3).unwrap();
    assert_eq!(f.matched, 6);
    let owned = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
        v.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    };
    // Most first, then by name; the first 3.
    assert_eq!(
        f.categories,
        owned(&[("cli", 2), ("library", 2), ("web", 2)])
    );
    assert_eq!(f.tags, owned(&[("rust", 3), ("axum", 1), ("ci", 1)]));
    // Words and a filter narrow what is counted.
    let rust_web = SearchQuery {
        text: "rust".into(),
        category: Some("web".into()),
        limit: 10,
        ..Default::default()
    };
    let f = store.index.facets(&rust_web, 10).unwrap();
    assert_eq!(f.matched, 1);
    assert_eq!(f.categories, owned(&[("web", 1)]));
    assert_eq!(f.tags, owned(&[("axum", 1), ("http", 1), ("rust", 1)]));
    let none = SearchQuery {
        text: "zzzz-nothing".into(),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(store.index.facets(&none, 10).unwrap(), Default::default());
}
