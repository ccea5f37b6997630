//! What a node keeps across a restart: the DHT records and provider records it held for
//! others, reputation and trust, its own archives' announcements; and a publisher key carried
//! to a fresh data directory continuing its names' index sequence.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{TIMEOUT, TestNet, example, wait_for, wait_searchable};
use peerpack_net::p2p::PeerId;
use peerpack_net::protocol;
use peerpack_store::dht::DhtReader;

/// Whether the store in `dir` holds a provider record from `provider` for `key`.
fn holds_provider(dir: &Path, key: &[u8], provider: PeerId) -> bool {
    DhtReader::open(dir)
        .unwrap()
        .providers(key, peerpack_store::db::now())
        .unwrap()
        .iter()
        .any(|p| p.provider == provider.to_bytes())
}

/// A copy of example `name` in `dir` with its version set to `version`.
fn example_at(name: &str, version: &str, dir: &Path) -> std::path::PathBuf {
    let to = dir.join(name);
    let from = example(name);
    for entry in walk(&from) {
        let rel = entry.strip_prefix(&from).unwrap();
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &dest).unwrap();
    }
    let manifest = to.join("peerpack.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("version = ") {
                format!("version = \"{version}\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&manifest, text + "\n").unwrap();
    to
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

//   A ── X ── D    A publishes and leaves; X restarts; D, a light node that has never met A,
//                  connects to X alone and finds A's package and A as its provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_reputation_trust_and_the_dht_records_it_held_for_others() {
    let mut net = TestNet::new(2).await; // 0 = X, 1 = A
    net.connect(1, 0).await;
    let a_id = net.inner(1).peer_id();
    let published = common::publish_alone(net.inner(1), example("axum-service"))
        .await
        .unwrap();
    let key = protocol::provider_key(&published.content_id);
    wait_searchable(net.inner(0), "axum", "axum-service").await;
    wait_for("X to hold A's provider record", TIMEOUT, || async {
        holds_provider(net.data_dir(0), &key, a_id).then_some(())
    })
    .await;
    let a_key = net.inner(1).publisher().to_string();
    net.inner(0).trust("axum-service", &a_key).await.unwrap();
    let before = net.inner(0).peer_view(&a_id.to_string()).unwrap();
    assert!(before.valid_records > 0, "{before:?}");
    net.stop(1).await;
    net.stop(0).await;

    net.restart(0).await;
    let x = net.inner(0).clone();
    let after = x.peer_view(&a_id.to_string()).unwrap();
    assert_eq!(after.valid_records, before.valid_records, "reputation kept");
    assert_eq!(after.first_seen, before.first_seen);
    let trusted = x.trusted().await.unwrap();
    assert!(
        trusted
            .iter()
            .any(|t| t.name == "axum-service" && t.owner == a_key),
        "trust kept: {trusted:?}"
    );

    let d = net.add_with(|c| c.catalogue_sync = false).await;
    net.connect(d, 0).await;
    let d = net.inner(d).clone();
    let info = wait_for(
        "D to read axum-service from X's DHT records",
        TIMEOUT,
        || async {
            d.info("axum-service")
                .await
                .ok()
                .filter(|i| !i.versions.is_empty())
        },
    )
    .await;
    assert_eq!(info.owner.as_deref(), Some(a_key.as_str()));
    let providers = wait_for("D to find A through X", TIMEOUT, || async {
        let found = d
            .net_handle()
            .get_providers(key.clone(), Duration::from_secs(5))
            .await
            .ok()?;
        found.contains(&a_id).then_some(found)
    })
    .await;
    assert!(providers.contains(&a_id));
    net.shutdown().await;
}

//   A publishes alone (its announcement reaches no one), stops; B starts; A restarts and meets
//   B: A announces its archive again without being asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_announces_its_archives_once_it_has_a_peer() {
    let mut net = TestNet::new(1).await; // 0 = A
    let a_id = net.inner(0).peer_id();
    let published = common::publish_alone(net.inner(0), example("axum-service"))
        .await
        .unwrap();
    assert_eq!(published.announced_to, 0);
    net.stop(0).await;
    let b = net.add().await;
    net.restart(0).await;
    // Its status says the round is due and waits for a peer.
    let dht = wait_for("A's status to show the round waiting", TIMEOUT, || async {
        let s = net.inner(0).status().await.ok()?;
        s.dht.waiting_for_peer.then_some(s.dht)
    })
    .await;
    assert!(dht.archives_round.is_none(), "{dht:?}");
    assert_eq!(dht.provided, 1, "{dht:?}");
    net.connect(0, b).await;
    let key = protocol::provider_key(&published.content_id);
    wait_for("B to hold A's provider record", TIMEOUT, || async {
        holds_provider(net.data_dir(b), &key, a_id).then_some(())
    })
    .await;
    // And then that the round ran, and when the next one is due (12 hours by default).
    let dht = wait_for("A's status to show the round", TIMEOUT, || async {
        let s = net.inner(0).status().await.ok()?;
        s.dht.archives_round.is_some().then_some(s.dht)
    })
    .await;
    let round = dht.archives_round.clone().unwrap();
    assert_eq!((round.done, round.failed), (1, 0), "{dht:?}");
    assert!(!dht.waiting_for_peer);
    assert!(dht.next_archives_in_s.unwrap() > 11 * 3600, "{dht:?}");
    net.shutdown().await;
}

//   A publishes axum-service 0.1.0, then its data directory is lost. The publisher key, kept
//   in a backup, goes to a fresh node C, which publishes 0.2.0 at once: C signs index seq 2 on
//   top of what the network holds, and B, which holds seq 1, accepts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_data_directory_with_an_imported_key_continues_the_index_sequence() {
    let work = tempfile::tempdir().unwrap();
    let mut net = TestNet::new(2).await; // 0 = B, 1 = A
    net.connect(1, 0).await;
    let first = common::publish_alone(
        net.inner(1),
        example_at("axum-service", "0.1.0", &work.path().join("one")),
    )
    .await
    .unwrap();
    assert_eq!(first.version, "0.1.0");
    let b = net.inner(0).clone();
    wait_for("B to hold seq 1", TIMEOUT, || async {
        b.info("axum-service")
            .await
            .ok()
            .filter(|i| i.index_seq == Some(1))
    })
    .await;
    let key = std::fs::read(net.data_dir(1).join("publisher.key")).unwrap();
    net.stop(1).await;

    let c_dir = tempfile::tempdir().unwrap();
    std::fs::write(c_dir.path().join("publisher.key"), &key).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            c_dir.path().join("publisher.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    // Catalogue sync off: C knows nothing but what it looks up.
    let mut config = peerpack_node::Config::loopback(c_dir.path());
    config.catalogue_sync = false;
    let c = peerpack_node::Node::start(config).await.unwrap();
    c.inner()
        .bootstrap(&[net.node(0).listen_addrs()[0].to_string()])
        .await
        .unwrap();
    wait_for("C's routing table", TIMEOUT, || async {
        (c.inner().status().await.unwrap().routing_table_size >= 1).then_some(())
    })
    .await;
    let second = common::publish_alone(
        c.inner(),
        example_at("axum-service", "0.2.0", &work.path().join("two")),
    )
    .await
    .unwrap();
    assert_eq!(second.version, "0.2.0");
    let info = c.inner().info("axum-service").await.unwrap();
    assert_eq!(info.index_seq, Some(2), "{info:?}");
    let info = wait_for("B to accept seq 2", TIMEOUT, || async {
        b.info("axum-service")
            .await
            .ok()
            .filter(|i| i.index_seq == Some(2))
    })
    .await;
    assert!(info.versions.iter().any(|v| v.version == "0.2.0"));
    c.shutdown().await;
    net.shutdown().await;
}
