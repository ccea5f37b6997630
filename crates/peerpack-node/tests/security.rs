//! Hostile and unusual peers: forged announcements, private addresses, DHT-only knowledge.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{TIMEOUT, TestNet, bare_peer, example, wait_for, wait_searchable};
use peerpack_core::record::RecordFields;
use peerpack_core::{ContentId, Manifest, PackageRecord, PublisherKey};
use peerpack_net::p2p::identity;
use peerpack_node::{Config, Node};

fn record(manifest: &str, key: &PublisherKey) -> PackageRecord {
    PackageRecord::sign(
        RecordFields {
            manifest: Manifest::parse(manifest, Path::new("peerpack.toml")).unwrap(),
            content_id: ContentId::of(b"whatever"),
            archive_size: 8,
            seq: 1,
            published_at: 1,
        },
        key,
    )
    .unwrap()
}

const EVIL: &str = "[package]\nname = \"evil-pack\"\nversion = \"1.0.0\"\ndescription = \"malware\"\nlicense = \"MIT\"\nauthors = [\"m\"]\n";
const SQUAT: &str = "[package]\nname = \"axum-service\"\nversion = \"9.9.9\"\ndescription = \"hijacked axum service\"\nlicense = \"MIT\"\nauthors = [\"m\"]\n";

//   L ── B ── C        L publishes honestly; M is a bare libp2p peer (no validation of its
//        │             own) that dials only B. C blocks M, so anything of M's that reaches C
//        M             must have been forwarded by B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_announcements_are_rejected_by_the_first_receiver_and_not_forwarded() {
    let net = TestNet::new(3).await; // 0 = L, 1 = B, 2 = C
    net.connect(0, 1).await;
    net.connect(2, 1).await;
    common::publish_alone(net.inner(0), example("axum-service"))
        .await
        .unwrap();
    wait_searchable(net.inner(2), "axum", "axum-service").await;

    let m_key = identity::Keypair::generate_ed25519();
    let m_id = m_key.public().to_peer_id();
    net.inner(2).block_peer(m_id).await.unwrap();
    let m = bare_peer(m_key, &net, 1).await;

    // 1. A record whose signature does not verify.
    let mut forged = record(EVIL, &PublisherKey::from_secret_bytes(&[9; 32]));
    forged.manifest.description = "tampered after signing".into();
    m.handle.announce(forged.encode()).await.unwrap();
    // 2. A validly signed record for a name another key owns: kept as a disputed claim,
    //    not forwarded, not penalised (an honest relay could have passed it on).
    let squat_key = PublisherKey::from_secret_bytes(&[8; 32]);
    let squat = record(SQUAT, &squat_key);
    m.handle.announce(squat.encode()).await.unwrap();

    let b = net.inner(1);
    let claims = wait_for("B to keep the squatter's claim", TIMEOUT, || async {
        b.info("axum-service")
            .await
            .ok()
            .map(|i| i.claims)
            .filter(|c| !c.is_empty())
    })
    .await;
    assert_eq!(claims[0].publisher, squat_key.public().to_string());
    assert_eq!(claims[0].versions, ["9.9.9"]);
    assert_eq!(claims[0].peers, [m_id.to_string()]);
    let m_view = wait_for("B to penalise M for the forgery", TIMEOUT, || async {
        b.peer_view(&m_id.to_string())
            .ok()
            .filter(|p| p.invalid_messages >= 1)
    })
    .await;
    assert_eq!(m_view.invalid_messages, 1, "only the forgery costs M");
    // Gossipsub's own score of M fell below the gossip threshold: B sends M no gossip.
    let score = wait_for("B's gossip score of M to fall", TIMEOUT, || async {
        b.net_handle()
            .gossip_score(m_id)
            .await
            .unwrap()
            .filter(|s| *s < -10.0)
    })
    .await;
    assert!(
        score >= -80.0,
        "one forgery is not yet the graylist: {score}"
    );
    let l_score = b
        .net_handle()
        .gossip_score(net.node(0).peer_id())
        .await
        .unwrap()
        .unwrap_or(0.0);
    assert!(l_score >= 0.0, "the honest peer's gossip score: {l_score}");
    assert!(
        m_view.score < 0.7,
        "M's score after a forgery: {}",
        m_view.score
    );
    let l_view = b.peer_view(&net.node(0).peer_id().to_string()).unwrap();
    assert!(
        l_view.score > m_view.score + 0.2,
        "honest {} vs forger {}",
        l_view.score,
        m_view.score
    );

    // A later honest publish reaches C through B: had B forwarded M's messages, they would
    // have arrived before it.
    common::publish_alone(net.inner(0), example("rust-cli"))
        .await
        .unwrap();
    wait_searchable(net.inner(2), "clap", "rust-cli").await;
    for i in [1, 2] {
        let inner = net.inner(i);
        assert!(
            inner.info("evil-pack").await.is_err(),
            "node {i} stored the forged record"
        );
        let info = inner.info("axum-service").await.unwrap();
        assert!(
            info.versions.iter().all(|v| v.version != "9.9.9"),
            "node {i} stored the squatter's version"
        );
        assert_eq!(info.owner, Some(net.inner(0).publisher().to_string()));
        assert_eq!(info.owner_source.as_deref(), Some("first-seen"));
    }
    let search = common::search(net.inner(1), "axum").await;
    assert!(
        search
            .iter()
            .any(|h| h.name == "axum-service" && h.disputed),
        "{search:?}"
    );
    assert!(
        net.inner(2)
            .info("axum-service")
            .await
            .unwrap()
            .claims
            .is_empty(),
        "B forwarded the squatter's claim to C"
    );
    // Had B forwarded a forgery, C would have caught it and blamed B.
    let b_from_c = net
        .inner(2)
        .peer_view(&net.node(1).peer_id().to_string())
        .unwrap();
    assert_eq!(
        b_from_c.invalid_messages, 0,
        "B forwarded something invalid to C"
    );
    m.handle.shutdown().await.unwrap();
    net.shutdown().await;
}

//   A ── Z   Z advertises /ip4/10.1.2.3/tcp/4001 through Identify; A is loopback-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_advertising_a_private_address_is_not_dialled_there() {
    let mut net = TestNet::new(1).await;
    let z_dir = tempfile::tempdir().unwrap();
    let mut z_config = Config::loopback(z_dir.path());
    z_config.external = vec!["/ip4/10.1.2.3/tcp/4001".parse().unwrap()];
    let z = Node::start(z_config).await.unwrap();
    let z_id = z.peer_id().to_string();
    net.inner(0)
        .bootstrap(&[z.listen_addrs()[0].to_string()])
        .await
        .unwrap();
    let a = net.inner(0);
    let view = wait_for("A to identify Z", TIMEOUT, || async {
        a.peer_view(&z_id).ok().filter(|p| !p.agent.is_empty())
    })
    .await;
    assert!(
        view.addresses
            .iter()
            .all(|addr| addr.starts_with("/ip4/127.")),
        "{:?}",
        view.addresses
    );

    // Asked outright, A refuses before any packet is sent.
    let err = a
        .bootstrap(&[format!("/ip4/10.1.2.3/tcp/4001/p2p/{z_id}")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("loopback-only"), "{err}");
    let status = a.status().await.unwrap();
    assert_eq!(status.policy, "loopback-only");
    assert_eq!(
        status.refused_dials, 0,
        "nothing ever tried to dial 10.1.2.3"
    );
    z.shutdown().await;
    net.stop(0).await;
}

//   A ── B ── C   C is a light node (no catalogue sync) that joins after A published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_of_a_name_missing_locally_is_answered_from_the_dht() {
    let net = TestNet::new(2).await;
    net.connect(0, 1).await;
    let p = common::publish_alone(net.inner(0), example("github-actions-ci"))
        .await
        .unwrap();
    wait_searchable(net.inner(1), "dependabot", "github-actions-ci").await;

    let c_dir = tempfile::tempdir().unwrap();
    let mut c_config = Config::loopback(c_dir.path());
    c_config.catalogue_sync = false;
    let c = Node::start(c_config).await.unwrap();
    c.inner()
        .bootstrap(&[net.node(1).listen_addrs()[0].to_string()])
        .await
        .unwrap();
    wait_for("C's routing table to fill", TIMEOUT, || async {
        (c.inner().status().await.unwrap().routing_table_size >= 1).then_some(())
    })
    .await;
    assert!(
        common::search(c.inner(), "dependabot").await.is_empty(),
        "C must not know it yet"
    );

    let info = c.inner().info("github-actions-ci").await.unwrap();
    assert_eq!(info.source, "dht");
    assert_eq!(info.owner, Some(net.inner(0).publisher().to_string()));
    assert_eq!(info.versions.len(), 1);
    assert_eq!(info.versions[0].content_id, p.content_id.to_string());
    // Now it is in C's catalogue, and searchable there.
    assert_eq!(
        c.inner().info("github-actions-ci").await.unwrap().source,
        "local"
    );
    wait_searchable(c.inner(), "dependabot", "github-actions-ci").await;

    let err = c.inner().info("no-such-package").await.unwrap_err();
    assert!(
        err.to_string().contains("no package named no-such-package"),
        "{err}"
    );
    c.shutdown().await;
    net.shutdown().await;
}

//   M ── B   M writes forged records straight into the DHT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_dht_writes_are_not_stored_and_cost_reputation() {
    let net = TestNet::new(1).await; // B
    let m_key = identity::Keypair::generate_ed25519();
    let m_id = m_key.public().to_peer_id();
    let m = bare_peer(m_key, &net, 0).await;
    let b = net.inner(0);
    wait_for("B to put M in its routing table", TIMEOUT, || async {
        b.peer_view(&m_id.to_string())
            .ok()
            .filter(|p| !p.agent.is_empty())
    })
    .await;

    // A record with a broken signature under its own key...
    let mut forged = record(EVIL, &PublisherKey::from_secret_bytes(&[9; 32]));
    forged.manifest.description = "tampered".into();
    let key = peerpack_net::protocol::record_key(forged.name(), forged.version());
    m.handle.put_record(key, forged.encode()).await.unwrap();
    // ...and a valid record stored under another package's key.
    let honest = record(EVIL, &PublisherKey::from_secret_bytes(&[7; 32]));
    let other_key = peerpack_net::protocol::record_key(
        &peerpack_core::PackageName::new("rust-cli").unwrap(),
        &peerpack_core::Version::new(1, 0, 0),
    );
    m.handle
        .put_record(other_key, honest.encode())
        .await
        .unwrap();

    let view = wait_for("B to refuse both writes", TIMEOUT, || async {
        b.peer_view(&m_id.to_string())
            .ok()
            .filter(|p| p.invalid_messages >= 2)
    })
    .await;
    assert!(view.score < 0.7, "{}", view.score);
    assert!(b.info("evil-pack").await.is_err());
    assert_eq!(b.status().await.unwrap().catalogue_size, 0);
    m.handle.shutdown().await.unwrap();
    net.shutdown().await;
}

//   L ── B ── M   M announces a valid package of its own, then forgeries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_min_reputation_drops_packages_only_a_bad_peer_provides() {
    let net = TestNet::new(2).await; // 0 = L, 1 = B
    net.connect(0, 1).await;
    common::publish_alone(net.inner(0), example("python-package"))
        .await
        .unwrap();
    let b = net.inner(1);
    wait_searchable(b, "pytest", "python-package").await;

    let m = bare_peer(identity::Keypair::generate_ed25519(), &net, 1).await;
    let own = "[package]\nname = \"m-template\"\nversion = \"1.0.0\"\ndescription = \"pytest starter from m\"\nlicense = \"MIT\"\nauthors = [\"m\"]\n";
    let own_record = record(own, &PublisherKey::from_secret_bytes(&[5; 32]));
    m.handle.announce(own_record.encode()).await.unwrap();
    wait_searchable(b, "pytest", "m-template").await;
    // Announcing a record does not make M a provider; announcing the archive with
    // ADD_PROVIDER does.
    m.handle
        .start_providing(peerpack_net::protocol::provider_key(&own_record.content_id))
        .await
        .unwrap();
    let id = own_record.content_id.to_string();
    wait_for("B to record M as a provider", TIMEOUT, || async {
        b.info("m-template")
            .await
            .ok()
            .filter(|i| i.versions[0].content_id == id && !i.versions[0].providers.is_empty())
    })
    .await;
    for seed in 0..3u8 {
        let mut forged = record(EVIL, &PublisherKey::from_secret_bytes(&[20 + seed; 32]));
        forged.manifest.description = format!("forgery {seed}");
        m.handle.announce(forged.encode()).await.unwrap();
    }
    let m_id = m.handle.local_peer_id().to_string();
    wait_for("B to penalise M", TIMEOUT, || async {
        b.peer_view(&m_id).ok().filter(|p| p.invalid_messages >= 3)
    })
    .await;

    let names = |min: Option<f64>| async move {
        let hits = b
            .search(peerpack_node::queries::Search {
                q: "pytest".into(),
                min_reputation: min,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut n: Vec<String> = hits.into_iter().map(|h| h.name).collect();
        n.sort();
        n
    };
    assert_eq!(names(None).await, ["m-template", "python-package"]);
    assert_eq!(names(Some(0.8)).await, ["python-package"]);
    m.handle.shutdown().await.unwrap();
    net.shutdown().await;
}

//   Z ── C ── A   A's policy is `any`; its operator points it at C (loopback, allowed for the
//                 operator). C tells A about Z, whose only dialable address is loopback (its
//                 private ones C never keeps): A must not dial it because a peer said so. Z
//                 refuses A, so that Z cannot connect to A first and spare A the dial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_any_policy_node_never_dials_local_addresses_that_peers_advertise() {
    let mut net = TestNet::new(1).await; // C
    let a = net
        .add_with(|c| c.policy = Some(peerpack_net::AddressPolicy::Any))
        .await;
    let z = net
        .add_with(|c| {
            c.external = [
                "/ip4/10.1.2.3/tcp/4001",
                "/ip4/192.168.1.1/tcp/4001",
                "/ip4/169.254.1.1/tcp/4001",
            ]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        })
        .await;
    let a_id = net.node(a).peer_id();
    net.inner(z).block_peer(a_id).await.unwrap();
    net.connect(z, 0).await;
    net.connect(a, 0).await;
    let a_inner = net.inner(a).clone();
    let status = wait_for("A to refuse Z's advertised address", TIMEOUT, || async {
        a_inner.status().await.ok().filter(|s| s.refused_dials >= 1)
    })
    .await;
    assert_eq!(status.policy, "any");
    let z_id = net.node(z).peer_id().to_string();
    assert!(
        a_inner.peer_view(&z_id).map_or(true, |p| !p.connected),
        "A is connected to Z"
    );
    // C never passed Z's private addresses on: loopback-only, it did not keep them.
    let c_view = net.inner(0).peer_view(&z_id).unwrap();
    assert!(
        c_view.addresses.iter().all(|a| a.starts_with("/ip4/127.")),
        "{:?}",
        c_view.addresses
    );
    net.shutdown().await;
}
