//! Names you can trust: each attack below is made by a bare libp2p peer (peerpack's network
//! layer with no validation of its own) against real nodes, and each must fail.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{TIMEOUT, TestNet, bare_peer, example, wait_for, wait_searchable};
use peerpack_core::record::{IndexEntry, RecordFields};
use peerpack_core::{
    ContentId, CuratorList, IndexRecord, Manifest, PackageName, PackageRecord, PublisherKey,
    Version,
};
use peerpack_net::p2p::identity;
use peerpack_net::protocol::{self, Topic};
use peerpack_node::Context as Inner;
use peerpack_node::error::Error;
use peerpack_node::install::{InstallProgress, InstallReport, InstallRequest};
use peerpack_node::publish::publish;

fn manifest(name: &str, version: &str, description: &str) -> Manifest {
    let text = format!(
        "[package]\nname = {name:?}\nversion = {version:?}\ndescription = {description:?}\nlicense = \"MIT\"\nauthors = [\"m\"]\n"
    );
    Manifest::parse(&text, Path::new("peerpack.toml")).unwrap()
}

fn signed(m: Manifest, key: &PublisherKey, seq: u64, content: &[u8]) -> PackageRecord {
    PackageRecord::sign(
        RecordFields {
            manifest: m,
            content_id: ContentId::of(content),
            archive_size: content.len() as u64,
            seq,
            published_at: 1,
        },
        key,
    )
    .unwrap()
}

fn index(records: &[&PackageRecord], seq: u64, key: &PublisherKey) -> IndexRecord {
    IndexRecord::sign(
        records[0].name().clone(),
        records
            .iter()
            .map(|r| IndexEntry::new(r.version().clone(), r.hash()))
            .collect(),
        seq,
        seq,
        key,
    )
    .unwrap()
}

fn name(n: &str) -> PackageName {
    PackageName::new(n).unwrap()
}

fn squatter() -> PublisherKey {
    PublisherKey::from_secret_bytes(&[66; 32])
}

/// The squatter's `rust-cli` 9.9.9 with an index record of sequence 999.
fn squat() -> (PackageRecord, IndexRecord) {
    let s = squatter();
    let r = signed(
        manifest("rust-cli", "9.9.9", "rust cli template, new and improved"),
        &s,
        1,
        b"malware",
    );
    let i = index(&[&r], 999, &s);
    (r, i)
}

/// Publish rust-cli and its dependency.
async fn publish_rust_cli(inner: &Arc<Inner>) -> peerpack_node::publish::Published {
    publish(inner, example("github-actions-ci")).await.unwrap();
    publish(inner, example("rust-cli")).await.unwrap()
}

/// M writes the squatter's index and record for `rust-cli` into the DHT (held in its own
/// store, offered to its closest peers).
async fn put_squat(m: &peerpack_net::NetHandle) -> (PackageRecord, IndexRecord) {
    let (record, idx) = squat();
    let rust_cli = name("rust-cli");
    m.put_record(protocol::index_key(&rust_cli), idx.encode())
        .await
        .unwrap();
    m.put_record(
        protocol::record_key(&rust_cli, record.version()),
        record.encode(),
    )
    .await
    .unwrap();
    (record, idx)
}

async fn install(
    inner: &Arc<Inner>,
    packages: &[&str],
    to: &Path,
    lock: Option<&str>,
    owner: Option<String>,
) -> Result<InstallReport, Error> {
    inner
        .install(
            InstallRequest {
                packages: packages.iter().map(ToString::to_string).collect(),
                to: to.to_owned(),
                lock: lock.map(ToString::to_string),
                locked: lock.is_some(),
                owner,
                ..Default::default()
            },
            Arc::new(InstallProgress::default()),
        )
        .await
}

/// Wait until `inner` has `at_least` peers in its routing table.
async fn routing(inner: &Arc<Inner>, at_least: usize) {
    wait_for("the routing table to fill", TIMEOUT, || async {
        (inner.status().await.unwrap().routing_table_size >= at_least).then_some(())
    })
    .await;
}

/// Wait until `inner` has met `peer` through Identify.
async fn identified(inner: &Arc<Inner>, peer: &str) {
    wait_for("a peer to be identified", TIMEOUT, || async {
        inner.peer_view(peer).ok().filter(|p| !p.agent.is_empty())
    })
    .await;
}

//   A ── B ── M     A publishes rust-cli; M serves a validly signed index for rust-cli with
//        │          seq 999 under its own key. D is a fresh node (no catalogue sync) that
//        D          first hears of rust-cli through a DHT lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_squatters_high_seq_index_makes_the_name_contested_on_a_fresh_node_not_owned() {
    let mut net = TestNet::new(2).await; // 0 = A, 1 = B
    net.connect(1, 0).await;
    let published = publish_rust_cli(net.inner(0)).await;
    wait_searchable(net.inner(1), "clap", "rust-cli").await;
    let honest = net.inner(0).publisher().to_string();

    let m_key = identity::Keypair::generate_ed25519();
    let m_id = m_key.public().to_peer_id().to_string();
    let m = bare_peer(m_key, &net, 1).await;
    identified(net.inner(1), &m_id).await;
    put_squat(&m.handle).await;

    // B, which owns rust-cli by A, keeps the squatter's claim, changes nothing, and does not
    // blame M: the records are validly signed.
    let b = net.inner(1);
    let info = wait_for("B to keep the squatter's claim", TIMEOUT, || async {
        b.info("rust-cli")
            .await
            .ok()
            .filter(|i| i.claims.iter().any(|c| c.seq == 999))
    })
    .await;
    assert_eq!(info.owner.as_deref(), Some(honest.as_str()));
    assert!(info.versions.iter().all(|v| v.version != "9.9.9"));
    assert_eq!(b.peer_view(&m_id).unwrap().invalid_messages, 0);

    // D looks rust-cli up: two keys answer, and D trusts neither yet.
    let d = net.add_with(|c| c.catalogue_sync = false).await;
    net.connect(d, 1).await;
    let d = net.inner(d).clone();
    routing(&d, 3).await;
    let info = d.info("rust-cli").await.unwrap();
    assert_eq!(info.status, "contested", "{info:?}");
    assert_eq!(info.owner, None);
    assert!(info.versions.is_empty());
    let mut claimants: Vec<&str> = info.claims.iter().map(|c| c.publisher.as_str()).collect();
    claimants.sort();
    let squat_key = squatter().public().to_string();
    let mut expected = vec![honest.as_str(), squat_key.as_str()];
    expected.sort();
    assert_eq!(claimants, expected);
    let squat_claim = info
        .claims
        .iter()
        .find(|c| c.publisher == squat_key)
        .unwrap();
    assert_eq!(squat_claim.seq, 999);
    assert_eq!(squat_claim.versions, ["9.9.9"]);
    assert_eq!(squat_claim.peers, std::slice::from_ref(&m_id));
    let honest_claim = info.claims.iter().find(|c| c.publisher == honest).unwrap();
    assert_eq!(
        honest_claim.versions,
        std::slice::from_ref(&published.version)
    );

    // Search marks it; install refuses, naming both claimants and how to choose.
    let hits = common::search(&d, "rust-cli").await;
    assert!(
        hits.first()
            .is_some_and(|h| h.name == "rust-cli" && h.contested),
        "{hits:?}"
    );
    let to = tempfile::tempdir().unwrap();
    let err = install(&d, &["rust-cli"], to.path(), None, None)
        .await
        .unwrap_err()
        .to_string();
    for needle in ["contested", honest.as_str(), squat_key.as_str(), "--owner"] {
        assert!(err.contains(needle), "{needle:?} missing from: {err}");
    }
    assert!(!to.path().join("rust-cli").exists());

    // The user picks the honest key: the install goes ahead, with the pin recorded.
    let report = install(&d, &["rust-cli"], to.path(), None, Some(honest.clone()))
        .await
        .unwrap();
    let rust_cli_installed = report.installed.iter().find(|i| i.name == "rust-cli");
    assert_eq!(rust_cli_installed.unwrap().version, published.version);
    assert!(to.path().join("rust-cli/peerpack.toml").is_file());
    let info = d.info("rust-cli").await.unwrap();
    assert_eq!(info.owner.as_deref(), Some(honest.as_str()));
    assert_eq!(info.owner_source.as_deref(), Some("trusted"));
    assert!(info.claims.iter().any(|c| c.publisher == squat_key));
    assert!(
        !common::search(&d, "clap").await.iter().any(|h| h.contested),
        "rust-cli is no longer contested"
    );
    m.handle.shutdown().await.unwrap();
    net.shutdown().await;
}

//   M ── B ── R   The owner's key signs records of several sequence numbers, and M writes them
//                 into B's DHT store in a hostile order. R reads what B serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_equivocating_dht_puts_are_never_stored_or_served() {
    let net = TestNet::new(1).await; // B
    let b = net.inner(0);
    let b_id = net.node(0).peer_id();
    let owner = PublisherKey::from_secret_bytes(&[41; 32]);
    let m_key = identity::Keypair::generate_ed25519();
    let m_id = m_key.public().to_peer_id().to_string();
    let m = bare_peer(m_key, &net, 0).await;
    identified(b, &m_id).await;

    let pack = name("demo-pack");
    let v1 = signed(manifest("demo-pack", "1.0.0", "first"), &owner, 1, b"one");
    let v1_seq2 = signed(manifest("demo-pack", "1.0.0", "first"), &owner, 2, b"one");
    let changed = signed(manifest("demo-pack", "1.0.0", "first"), &owner, 3, b"two");
    let twin = signed(
        manifest("demo-pack", "1.0.0", "same seq"),
        &owner,
        2,
        b"one",
    );
    let v2 = signed(
        manifest("demo-pack", "1.1.0", "second"),
        &owner,
        1,
        b"three",
    );
    let key_v1 = protocol::record_key(&pack, v1.version());
    let key_index = protocol::index_key(&pack);
    let put = |key: &Vec<u8>, value: Vec<u8>| {
        let (h, k) = (m.handle.clone(), key.clone());
        async move { h.put_record(k, value).await.unwrap() }
    };
    let seq_of_1_0_0 = || async {
        b.info("demo-pack")
            .await
            .ok()
            .and_then(|i| i.versions.into_iter().find(|v| v.version == "1.0.0"))
            .map(|v| v.seq)
    };

    put(&key_index, index(&[&v1], 1, &owner).encode()).await;
    put(&key_v1, v1.encode()).await;
    wait_for("B to store 1.0.0", TIMEOUT, || async {
        seq_of_1_0_0().await.filter(|s| *s == 1)
    })
    .await;
    put(&key_v1, v1_seq2.encode()).await;
    wait_for("B to take the re-signed 1.0.0", TIMEOUT, || async {
        seq_of_1_0_0().await.filter(|s| *s == 2)
    })
    .await;
    // Replays, rollbacks and equivocations.
    put(&key_v1, v1.encode()).await; // stale
    put(&key_v1, changed.encode()).await; // other content for a published version
    put(&key_v1, twin.encode()).await; // same seq, other bytes
    let index2 = index(&[&v1_seq2], 2, &owner);
    put(&key_index, index2.encode()).await;
    put(&key_index, index(&[&v1], 1, &owner).encode()).await; // index rollback below 2
    put(&key_index, index(&[&v1], 2, &owner).encode()).await; // index equivocation
    // A marker: once B has 1.1.0, it has handled every write before it.
    let index3 = index(&[&v1_seq2, &v2], 3, &owner);
    put(&protocol::record_key(&pack, v2.version()), v2.encode()).await;
    put(&key_index, index3.encode()).await;
    wait_for("B to store 1.1.0", TIMEOUT, || async {
        b.info("demo-pack")
            .await
            .ok()
            .filter(|i| i.versions.iter().any(|v| v.version == "1.1.0") && i.index_seq == Some(3))
    })
    .await;

    let info = b.info("demo-pack").await.unwrap();
    let v = info.versions.iter().find(|v| v.version == "1.0.0").unwrap();
    assert_eq!(v.seq, 2);
    assert_eq!(v.content_id, ContentId::of(b"one").to_string());
    assert_eq!(v.description, "first");
    // Every write was validly signed by the owner: nothing to blame M for.
    assert_eq!(b.peer_view(&m_id).unwrap().invalid_messages, 0);

    // A replay over gossip is ignored, so B does not forward it; a new record is accepted and
    // forwarded. L listens to what B forwards.
    let (l, heard) = common::listener(&net, 0).await;
    // L hears M only through B.
    l.block(m_id.parse().unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await; // L's subscription reaches B's mesh
    m.handle.announce(v1.encode()).await.unwrap();
    let v3 = signed(manifest("demo-pack", "1.2.0", "third"), &owner, 1, b"four");
    m.handle.announce(v3.encode()).await.unwrap();
    wait_for("L to hear 1.2.0 from B", TIMEOUT, || async {
        heard.lock().unwrap().contains(&v3.encode()).then_some(())
    })
    .await;
    // B handled the replay before 1.2.0; give gossip's lazy path (IHAVE) a few heartbeats too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !heard.lock().unwrap().contains(&v1.encode()),
        "B forwarded the replay"
    );
    assert_eq!(seq_of_1_0_0().await, Some(2));

    // A reader gets from B exactly the records B accepted.
    let r = bare_peer(identity::Keypair::generate_ed25519(), &net, 0).await;
    let served = |key: Vec<u8>| {
        let h = r.handle.clone();
        async move {
            let found = h.get_record_from(key, TIMEOUT).await.unwrap();
            found
                .into_iter()
                .filter(|f| f.peers.contains(&b_id))
                .map(|f| f.value)
                .collect::<Vec<_>>()
        }
    };
    wait_for("R to reach B", TIMEOUT, || async {
        (!served(key_index.clone()).await.is_empty()).then_some(())
    })
    .await;
    assert_eq!(served(key_v1.clone()).await, vec![v1_seq2.encode()]);
    assert_eq!(served(key_index.clone()).await, vec![index3.encode()]);
    r.handle.shutdown().await.unwrap();
    m.handle.shutdown().await.unwrap();
    net.shutdown().await;
}

//   A ── B        C ── M      C hears the squatter's rust-cli first and trusts it on first
//        └── C (later)        use; then C meets B. Each relays a record the other finds
//                             conflicting: neither is blamed, and neither owner changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_relay_of_a_conflicting_record_is_not_penalised() {
    let net = TestNet::new(3).await; // 0 = A, 1 = B, 2 = C
    net.connect(1, 0).await;
    publish_rust_cli(net.inner(0)).await;
    wait_searchable(net.inner(1), "clap", "rust-cli").await;
    let honest = net.inner(0).publisher().to_string();
    let squat_key = squatter().public().to_string();

    let m_key = identity::Keypair::generate_ed25519();
    let m_id = m_key.public().to_peer_id().to_string();
    let m = bare_peer(m_key, &net, 2).await;
    let c = net.inner(2);
    identified(c, &m_id).await;
    let (squat_record, squat_index) = squat();
    let rust_cli = name("rust-cli");
    let (squat_record_key, index_key) = (
        protocol::record_key(&rust_cli, squat_record.version()),
        protocol::index_key(&rust_cli),
    );
    m.handle.announce(squat_record.encode()).await.unwrap();
    m.handle
        .put_record(index_key.clone(), squat_index.encode())
        .await
        .unwrap();
    m.handle
        .put_record(squat_record_key.clone(), squat_record.encode())
        .await
        .unwrap();
    wait_for("C to take the squatter's rust-cli", TIMEOUT, || async {
        c.info("rust-cli")
            .await
            .ok()
            .filter(|i| i.owner.as_deref() == Some(squat_key.as_str()))
    })
    .await;

    net.connect(2, 1).await;
    let b = net.inner(1);
    let c_id = net.node(2).peer_id().to_string();
    let b_id = net.node(1).peer_id().to_string();
    let info = wait_for("B to learn C's claim by sync", TIMEOUT, || async {
        b.info("rust-cli")
            .await
            .ok()
            .filter(|i| i.claims.iter().any(|cl| cl.peers.contains(&c_id)))
    })
    .await;
    assert_eq!(info.owner.as_deref(), Some(honest.as_str()));
    assert_eq!(info.claims[0].publisher, squat_key);
    wait_for("C to learn B's claim by sync", TIMEOUT, || async {
        c.info("rust-cli")
            .await
            .ok()
            .filter(|i| i.claims.iter().any(|cl| cl.publisher == honest))
    })
    .await;
    assert_eq!(
        c.info("rust-cli").await.unwrap().owner.as_deref(),
        Some(squat_key.as_str()),
        "a later claim never changes the owner"
    );
    assert_eq!(b.peer_view(&c_id).unwrap().invalid_messages, 0);
    assert_eq!(c.peer_view(&b_id).unwrap().invalid_messages, 0);

    // C's user pins the real owner: C stops serving the squatter's records from its DHT store.
    let c_peer = net.node(2).peer_id();
    let r = bare_peer(identity::Keypair::generate_ed25519(), &net, 2).await;
    let served_by_c = |key: Vec<u8>| {
        let h = r.handle.clone();
        async move {
            h.get_record_from(key, TIMEOUT)
                .await
                .unwrap()
                .into_iter()
                .filter(|f| f.peers.contains(&c_peer))
                .map(|f| f.value)
                .collect::<Vec<_>>()
        }
    };
    wait_for("R to read the squatter's index from C", TIMEOUT, || async {
        (served_by_c(index_key.clone()).await == vec![squat_index.encode()]).then_some(())
    })
    .await;
    c.trust("rust-cli", &honest).await.unwrap();
    assert_eq!(
        c.info("rust-cli").await.unwrap().owner.as_deref(),
        Some(honest.as_str())
    );
    assert!(served_by_c(squat_record_key.clone()).await.is_empty());
    assert!(
        !served_by_c(index_key.clone())
            .await
            .contains(&squat_index.encode())
    );
    r.handle.shutdown().await.unwrap();
    m.handle.shutdown().await.unwrap();
    net.shutdown().await;
}

//   A ── B ── K    K is a curator that vouches for A's rust-cli; M squats rust-cli in the DHT
//        │         and sends D a curator list forged in K's name. D trusts K.
//        M ── D
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_curator_settles_a_contest_and_a_forged_list_is_refused() {
    let mut net = TestNet::new(3).await; // 0 = A, 1 = B, 2 = K
    net.connect(1, 0).await;
    net.connect(2, 1).await;
    publish_rust_cli(net.inner(0)).await;
    wait_searchable(net.inner(1), "clap", "rust-cli").await;
    let honest = net.inner(0).publisher();
    let curator = net.inner(2).publisher();

    let m_key = identity::Keypair::generate_ed25519();
    let m_id = m_key.public().to_peer_id().to_string();
    let m = bare_peer(m_key, &net, 1).await;
    identified(net.inner(1), &m_id).await;
    put_squat(&m.handle).await;
    let rust_cli = name("rust-cli");

    let view = net
        .inner(2)
        .curate(vec![("rust-cli".into(), honest.to_string())], vec![])
        .await
        .unwrap();
    assert!(view.seq >= 1);
    assert_eq!(view.entries["rust-cli"], honest.to_string());

    let d = net
        .add_with(|c| {
            c.catalogue_sync = false;
            c.curators = vec![curator];
        })
        .await;
    let d_inner = net.inner(d).clone();
    // M, connected to D, gossips a list in K's name that names the squatter: its signature
    // cannot verify.
    let m2_key = identity::Keypair::generate_ed25519();
    let m2_id = m2_key.public().to_peer_id().to_string();
    let m2 = bare_peer(m2_key, &net, d).await;
    identified(&d_inner, &m2_id).await;
    let forged = CuratorList {
        curator,
        seq: 9,
        updated_at: 9,
        entries: [(rust_cli.clone(), squatter().public())]
            .into_iter()
            .collect(),
        signature: [7; 64],
    };
    m2.handle
        .announce_on(Topic::Curators, forged.encode())
        .await
        .unwrap();
    wait_for("D to refuse the forged list", TIMEOUT, || async {
        d_inner
            .peer_view(&m2_id)
            .ok()
            .filter(|p| p.invalid_messages >= 1)
    })
    .await;

    // D meets the network and looks rust-cli up: two keys answer, and K's list decides.
    net.connect(d, 1).await;
    routing(&d_inner, 4).await;
    let info = d_inner.info("rust-cli").await.unwrap();
    assert_eq!(info.status, "owned", "{info:?}");
    assert_eq!(info.owner, Some(honest.to_string()));
    assert_eq!(info.owner_source.as_deref(), Some("curator"));
    assert_eq!(info.curator, Some(curator.to_string()));
    assert!(
        info.claims
            .iter()
            .any(|c| c.publisher == squatter().public().to_string())
    );
    let to = tempfile::tempdir().unwrap();
    let report = install(&d_inner, &["rust-cli"], to.path(), None, None)
        .await
        .unwrap();
    assert!(report.installed.iter().any(|i| i.name == "rust-cli"));
    m2.handle.shutdown().await.unwrap();
    m.handle.shutdown().await.unwrap();
    net.shutdown().await;
}

//   A ── B ── M   B installs rust-cli and writes a lock naming A's key. D (fresh) installs
//        ├── D    from that lock although M's squat makes rust-cli contested there; E, which
//        └── E    took the squatter's rust-cli first, refuses the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_file_pins_the_publisher_key() {
    let mut net = TestNet::new(2).await; // 0 = A, 1 = B
    net.connect(1, 0).await;
    publish_rust_cli(net.inner(0)).await;
    wait_searchable(net.inner(1), "clap", "rust-cli").await;
    let honest = net.inner(0).publisher().to_string();
    let squat_key = squatter().public().to_string();
    let m_key = identity::Keypair::generate_ed25519();
    let m_id = m_key.public().to_peer_id().to_string();
    let m = bare_peer(m_key, &net, 1).await;
    identified(net.inner(1), &m_id).await;
    let (squat_record, _) = put_squat(&m.handle).await;

    let b_dir = tempfile::tempdir().unwrap();
    let lock = install(net.inner(1), &["rust-cli"], b_dir.path(), None, None)
        .await
        .unwrap()
        .lock;
    assert!(lock.contains(&honest), "{lock}");

    // D: fresh, and rust-cli would be contested there; the lock's key settles it.
    let d = net.add_with(|c| c.catalogue_sync = false).await;
    net.connect(d, 1).await;
    let d_inner = net.inner(d).clone();
    routing(&d_inner, 3).await;
    let to = tempfile::tempdir().unwrap();
    install(&d_inner, &[], to.path(), Some(&lock), None)
        .await
        .unwrap();
    assert!(to.path().join("rust-cli/peerpack.toml").is_file());
    let info = d_inner.info("rust-cli").await.unwrap();
    assert_eq!(info.owner.as_deref(), Some(honest.as_str()));

    // E took the squatter's rust-cli on first use (M reached it first): the lock is refused,
    // naming both keys, and nothing is installed.
    let e = net.add().await;
    let e_inner = net.inner(e).clone();
    let m3_key = identity::Keypair::generate_ed25519();
    let m3_id = m3_key.public().to_peer_id().to_string();
    let m3 = bare_peer(m3_key, &net, e).await;
    identified(&e_inner, &m3_id).await;
    m3.handle.announce(squat_record.encode()).await.unwrap();
    wait_for("E to take the squatter's rust-cli", TIMEOUT, || async {
        e_inner
            .info("rust-cli")
            .await
            .ok()
            .filter(|i| i.owner.as_deref() == Some(squat_key.as_str()))
    })
    .await;
    net.connect(e, 1).await;
    let to = tempfile::tempdir().unwrap();
    let err = install(&e_inner, &[], to.path(), Some(&lock), None)
        .await
        .unwrap_err()
        .to_string();
    for needle in [honest.as_str(), squat_key.as_str(), "peerpack trust"] {
        assert!(err.contains(needle), "{needle:?} missing from: {err}");
    }
    assert!(!to.path().join("rust-cli").exists());
    m3.handle.shutdown().await.unwrap();
    m.handle.shutdown().await.unwrap();
    net.shutdown().await;
}

//   M ── B ── D   M holds a name whose index lists 100 versions. D, fresh, looks it up: it
//                 reads the 64 newest, not 100 records at once, and an older one on request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_reads_a_bounded_number_of_versions() {
    let mut net = TestNet::new(1).await; // B
    let owner = PublisherKey::from_secret_bytes(&[43; 32]);
    let m_key = identity::Keypair::generate_ed25519();
    let m_id = m_key.public().to_peer_id().to_string();
    let m = bare_peer(m_key, &net, 0).await;
    identified(net.inner(0), &m_id).await;
    let pack = name("many-versions");
    let records: Vec<PackageRecord> = (0..100u64)
        .map(|i| {
            signed(
                manifest("many-versions", &format!("1.{i}.0"), "many"),
                &owner,
                1,
                format!("v{i}").as_bytes(),
            )
        })
        .collect();
    // Only M holds them: B refuses nothing, but D must ask the DHT.
    for r in &records {
        m.handle
            .put_record(protocol::record_key(&pack, r.version()), r.encode())
            .await
            .unwrap();
    }
    let refs: Vec<&PackageRecord> = records.iter().collect();
    m.handle
        .put_record(protocol::index_key(&pack), index(&refs, 1, &owner).encode())
        .await
        .unwrap();

    let d = net.add_with(|c| c.catalogue_sync = false).await;
    net.connect(d, 0).await;
    let d = net.inner(d).clone();
    routing(&d, 2).await;
    let info = d.info("many-versions").await.unwrap();
    assert_eq!(
        info.versions.len(),
        peerpack_node::lookup::MAX_LOOKUP_VERSIONS,
        "a lookup read {} versions",
        info.versions.len()
    );
    assert_eq!(info.versions[0].version, "1.99.0");
    assert!(info.versions.iter().all(|v| v.version != "1.0.0"));
    // An older version is read on its own when asked for.
    assert!(
        peerpack_node::lookup::fetch_version(&d, &pack, &Version::new(1, 0, 0))
            .await
            .unwrap()
    );
    assert!(
        d.info("many-versions")
            .await
            .unwrap()
            .versions
            .iter()
            .any(|v| v.version == "1.0.0")
    );
    m.handle.shutdown().await.unwrap();
    net.shutdown().await;
}

/// A package directory for `name` `version` with one file.
fn package_dir(name: &str, version: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("peerpack.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"{version}\"\ndescription = \"{name} test\"\nlicense = \"MIT\"\nauthors = [\"t\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("README.md"), format!("{name} {version}\n")).unwrap();
    dir
}

//   A ── B ── M    A owns `yank-me` (1.0.0, 1.1.0). M, under another key, gossips an index
//                  for it that yanks 1.1.0; B ignores it. A yanks 1.1.0 for real: B's
//                  resolver skips it unless a lock names it; M's replay of A's older index
//                  does not take the yank back, and B cannot yank what A owns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_yanks_and_the_resolver_honours_it_unless_locked() {
    let net = TestNet::new(2).await; // 0 = A, 1 = B
    net.connect(1, 0).await;
    let (a, b) = (net.inner(0).clone(), net.inner(1).clone());
    for v in ["1.0.0", "1.1.0"] {
        let dir = package_dir("yank-me", v);
        publish(&a, dir.path().to_owned()).await.unwrap();
    }
    wait_for("B to know yank-me 1.1.0", TIMEOUT, || async {
        b.info("yank-me")
            .await
            .ok()
            .filter(|i| i.versions.iter().any(|v| v.version == "1.1.0"))
    })
    .await;
    let old_index = a.info("yank-me").await.unwrap().index_seq;
    let m_key = identity::Keypair::generate_ed25519();
    let m_id = m_key.public().to_peer_id().to_string();
    let m = bare_peer(m_key, &net, 1).await;
    identified(&b, &m_id).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // M joins B's gossip mesh

    // M's forged yank: a valid index for the name, signed by the squatter's key.
    let records: Vec<PackageRecord> = {
        let n = name("yank-me");
        let info = a.info("yank-me").await.unwrap();
        assert_eq!(info.versions.len(), 2);
        let s = squatter();
        let v = [
            signed(manifest(n.as_str(), "1.0.0", "x"), &s, 1, b"x"),
            signed(manifest(n.as_str(), "1.1.0", "y"), &s, 1, b"y"),
        ];
        v.to_vec()
    };
    let mut entries: Vec<IndexEntry> = records
        .iter()
        .map(|r| IndexEntry::new(r.version().clone(), r.hash()))
        .collect();
    entries[1].yanked = Some("forged".into());
    let forged = IndexRecord::sign(name("yank-me"), entries, 50, 50, &squatter()).unwrap();
    m.handle
        .announce_on(Topic::Indexes, forged.encode())
        .await
        .unwrap();
    m.handle
        .put_record(protocol::index_key(&name("yank-me")), forged.encode())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let info = b.info("yank-me").await.unwrap();
    assert!(info.versions.iter().all(|v| v.yanked.is_none()), "{info:?}");
    let to = tempfile::tempdir().unwrap();
    let got = install(&b, &["yank-me"], to.path(), None, None)
        .await
        .unwrap();
    assert_eq!(got.installed[0].version, "1.1.0");
    let lock = got.lock;

    // A non-owner cannot yank.
    let err = b.yank("yank-me@1.0.0", None, false).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(err.to_string().contains("only its owner"), "{err}");

    // A's index as it is before the yank, for M to replay later.
    let a_key = a.publisher();
    let before_yank = m
        .handle
        .get_record_from(protocol::index_key(&name("yank-me")), TIMEOUT)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.value)
        .find(|v| IndexRecord::decode_verified(v).is_ok_and(|i| i.publisher == a_key))
        .expect("A's index in the DHT");
    assert_eq!(
        IndexRecord::decode(&before_yank).unwrap().seq,
        old_index.unwrap()
    );

    // The owner's yank reaches B by gossip.
    let amended = a
        .yank("yank-me@1.1.0", Some("ships a broken file".into()), false)
        .await
        .unwrap();
    assert_eq!(amended.versions, ["1.1.0"]);
    wait_for("B to see the yank", TIMEOUT, || async {
        b.info("yank-me").await.ok().filter(|i| {
            i.versions
                .iter()
                .any(|v| v.version == "1.1.0" && v.yanked.as_deref() == Some("ships a broken file"))
        })
    })
    .await;

    // A fresh install skips the yanked version; an exact request for it says why it failed.
    let fresh = tempfile::tempdir().unwrap();
    let got = install(&b, &["yank-me"], fresh.path(), None, None)
        .await
        .unwrap();
    assert_eq!(got.installed[0].version, "1.0.0");
    let err = install(&b, &["yank-me@=1.1.0"], fresh.path(), None, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("yanked by the owner: 1.1.0"), "{err}");
    // A lock that names it keeps it, exactly or as a preference.
    let locked = install(&b, &[], to.path(), Some(&lock), None)
        .await
        .unwrap();
    assert_eq!(locked.installed[0].version, "1.1.0");
    let kept = b
        .install(
            InstallRequest {
                packages: vec!["yank-me".into()],
                to: to.path().to_owned(),
                lock: Some(lock.clone()),
                ..Default::default()
            },
            Arc::new(InstallProgress::default()),
        )
        .await
        .unwrap();
    assert_eq!(kept.installed[0].version, "1.1.0");
    assert!(kept.changes.is_empty(), "{:?}", kept.changes);

    // A replay of A's index from before the yank does not take it back.
    m.handle
        .announce_on(Topic::Indexes, before_yank.clone())
        .await
        .unwrap();
    m.handle
        .put_record(protocol::index_key(&name("yank-me")), before_yank)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let info = b.info("yank-me").await.unwrap();
    assert!(
        info.versions
            .iter()
            .any(|v| v.version == "1.1.0" && v.yanked.is_some()),
        "{info:?}"
    );
    assert_eq!(
        b.peer_view(&m_id).unwrap().invalid_messages,
        0,
        "valid bytes, only stale"
    );
    net.shutdown().await;
    m.handle.shutdown().await.unwrap();
}

/// `GET path` on node `i`'s API, answered by its router: (status, JSON body).
async fn api_get(net: &TestNet, i: usize, path: &str) -> (u16, serde_json::Value) {
    use tower::ServiceExt;
    let router = peerpack_node::api::router(net.inner(i).clone());
    let req = axum::http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = router.oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

//   A ── B ── M1      A owns rust-cli. M1 holds the squatter's validly signed index record of
//        └─── M2      rust-cli, M2 a copy with a broken signature; both serve it to any DHT
//                     query. B asks the DHT directly (`peerpack dht name`, `dht providers`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_queries_show_every_claim_and_count_broken_values() {
    let net = TestNet::new(2).await;
    net.connect(0, 1).await;
    let a = net.inner(0);
    let published = common::publish_alone(a, example("rust-cli")).await.unwrap();
    let owner = a.publisher().to_string();
    let a_id = net.node(0).peer_id().to_string();

    let (_, squat_index) = squat();
    let key = protocol::index_key(&name("rust-cli"));
    let m1_key = identity::Keypair::generate_ed25519();
    let m1_id = m1_key.public().to_peer_id().to_string();
    let m1 = bare_peer(m1_key, &net, 1).await;
    let m2_key = identity::Keypair::generate_ed25519();
    let m2_id = m2_key.public().to_peer_id().to_string();
    let m2 = bare_peer(m2_key, &net, 1).await;
    let mut broken = squat_index.encode();
    let last = broken.len() - 1;
    broken[last] ^= 0x01;
    // Each keeps its value in its own store whatever B does with the put.
    let _ = m1
        .handle
        .put_record(key.clone(), squat_index.encode())
        .await;
    let _ = m2.handle.put_record(key, broken).await;
    let b = net.inner(1);
    for m in [&m1_id, &m2_id] {
        wait_for("B to identify the bare peers", TIMEOUT, || async {
            b.peer_view(m).ok().filter(|p| !p.agent.is_empty())
        })
        .await;
    }

    // Every claim, each with the peers that served it; the broken value counted, not shown.
    let answer = wait_for(
        "B to see both claims of rust-cli in the DHT",
        TIMEOUT,
        || async {
            let (status, body) = api_get(&net, 1, "/v1/dht/names/rust-cli").await;
            assert_eq!(status, 200, "{body}");
            (body["claims"].as_array().unwrap().len() == 2 && body["invalid"].as_u64() >= Some(1))
                .then_some(body)
        },
    )
    .await;
    let claims = answer["claims"].as_array().unwrap();
    let squatter_key = squatter().public().to_string();
    // The highest seq first: the squatter's 999.
    assert_eq!(claims[0]["publisher"], squatter_key.as_str(), "{answer}");
    assert_eq!(claims[0]["seq"], 999);
    assert_eq!(claims[0]["peers"], serde_json::json!([m1_id]), "{answer}");
    assert_eq!(claims[1]["publisher"], owner.as_str(), "{answer}");
    assert_eq!(
        claims[1]["versions"],
        serde_json::json!([published.version]),
        "{answer}"
    );
    assert!(
        claims[1]["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == a_id.as_str()),
        "{answer}"
    );
    assert!(answer["took_ms"].as_f64().unwrap() > 0.0);
    // Serving a broken value costs M2, not M1.
    assert!(b.peer_view(&m2_id).unwrap().invalid_messages >= 1);
    assert_eq!(b.peer_view(&m1_id).unwrap().invalid_messages, 0);
    // Reading the DHT decided nothing: the squatter's claim is not B's business until a
    // lookup or an install asks, and the name stays A's wherever B knows it.
    if let Ok(info) = b.info("rust-cli").await {
        assert_eq!(info.owner.as_deref(), Some(owner.as_str()));
    }

    // The archive's providers: the whole query, and up to the first found.
    let cid = published.content_id.to_string();
    for (query, first) in [("", false), ("?first=true", true)] {
        let (status, body) = api_get(&net, 1, &format!("/v1/dht/providers/{cid}{query}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["providers"], serde_json::json!([a_id]), "{body}");
        assert_eq!(body["first"], first);
        assert_eq!(body["content_id"], cid.as_str());
    }
    // An archive nobody announced: an empty answer, not an error.
    let nobody = ContentId::of(b"announced by nobody").to_string();
    let (status, body) = api_get(&net, 1, &format!("/v1/dht/providers/{nobody}")).await;
    assert_eq!((status, &body["providers"]), (200, &serde_json::json!([])));

    // Bad input names what is wrong.
    let upper = format!("blake3:{}", cid["blake3:".len()..].to_ascii_uppercase());
    for (path, says) in [
        (format!("/v1/dht/providers/{upper}"), "is not a content id"),
        (
            "/v1/dht/providers/blake3:00".to_owned(),
            "is not a content id",
        ),
        (format!("/v1/dht/providers/{cid}?first=maybe"), "first"),
        ("/v1/dht/names/Rust_CLI".to_owned(), "Rust_CLI"),
    ] {
        let (status, body) = api_get(&net, 1, &path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "bad_request");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{path}: {message}");
    }
    m1.handle.shutdown().await.unwrap();
    m2.handle.shutdown().await.unwrap();
    net.shutdown().await;
}
