//! Multi-node scenarios over real libp2p on loopback.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{TIMEOUT, TestNet, example, examples, search, wait_for, wait_searchable};
use peerpack_node::{Config, Node};

//   A ── B ── C    (star around B: A and C both dial B)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_on_one_node_is_searchable_on_every_other() {
    let net = TestNet::new(3).await;
    net.connect(0, 1).await;
    net.connect(2, 1).await;
    let published = net.inner(0).clone();
    let p = common::publish_alone(&published, example("axum-service"))
        .await
        .unwrap();
    assert_eq!(p.name, "axum-service");
    for i in 0..3 {
        wait_searchable(net.inner(i), "axum", "axum-service").await;
        let hit = search(net.inner(i), "axum")
            .await
            .into_iter()
            .find(|h| h.name == "axum-service")
            .unwrap();
        assert_eq!(hit.content_id, p.content_id.to_string());
    }
    net.shutdown().await;
}

/// DHT queries of `kind` this node made since it started, whatever their result.
async fn dht_queries(inner: &std::sync::Arc<peerpack_node::Context>, kind: &str) -> u64 {
    inner
        .status()
        .await
        .unwrap()
        .dht_queries
        .iter()
        .filter(|q| q.kind == kind)
        .flat_map(|q| q.results.values())
        .sum()
}

// Writes from the network reach the search index in batches, with an indexer task that
// commits once per burst. A search still sees every write that returned before it: a record
// stored by gossip, and a package the node has just published, are found at once, before
// the indexer's batch delay has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_sees_every_write_that_returned_before_it() {
    use peerpack_core::record::RecordFields;
    use peerpack_core::{ContentId, Manifest, PackageRecord, PublisherKey};
    let net = TestNet::new(1).await;
    let key = PublisherKey::from_secret_bytes(&[41; 32]);
    for i in 0..20 {
        let name = format!("burst-pack-{i}");
        let m = Manifest::parse(
            &format!(
                "[package]\nname = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"burstword\"\nlicense = \"MIT\"\nauthors = [\"a\"]\n"
            ),
            std::path::Path::new("peerpack.toml"),
        )
        .unwrap();
        let r = PackageRecord::sign(
            RecordFields {
                manifest: m,
                content_id: ContentId::of(name.as_bytes()),
                archive_size: 4,
                seq: 1,
                published_at: 1,
            },
            &key,
        )
        .unwrap();
        peerpack_node::ingest::records(
            net.inner(0),
            vec![r.encode()],
            None,
            peerpack_node::ingest::Via::Gossip,
        )
        .await
        .unwrap();
        let hits = search(net.inner(0), &name).await;
        assert!(
            hits.iter().any(|h| h.name == name),
            "{name} stored by gossip is not found by the search right after: {hits:?}"
        );
    }
    assert_eq!(search(net.inner(0), "burstword").await.len(), 20);
    let p = example("github-actions-ci");
    let published = peerpack_node::publish::publish(net.inner(0), p)
        .await
        .unwrap();
    let hits = search(net.inner(0), &published.name).await;
    assert!(
        hits.iter().any(|h| h.name == published.name),
        "a package just published is not found at once: {hits:?}"
    );
    net.shutdown().await;
}

//   A ── B ── C    A publishes: the answer comes once the package is stored and announced, C
//   installs it the moment it can find it, and the DHT records follow. A's next version of
//   its own name is published without reading the DHT first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_answers_once_announced_and_its_dht_records_follow() {
    let net = TestNet::new(3).await;
    net.connect(0, 1).await;
    net.connect(2, 1).await;
    let p = common::publish_alone(net.inner(0), example("github-actions-ci"))
        .await
        .unwrap();
    assert_eq!(p.dht_peers, None, "the DHT writes go on in the background");
    assert!(p.announced_to >= 1);

    // C installs as soon as the announcement reached it, whether or not A's provider record
    // is out yet.
    wait_searchable(net.inner(2), "github", "github-actions-ci").await;
    let to = tempfile::tempdir().unwrap();
    let report = net
        .inner(2)
        .install(
            peerpack_node::install::InstallRequest {
                packages: vec!["github-actions-ci".into()],
                to: to.path().join("packs"),
                ..Default::default()
            },
            std::sync::Arc::new(peerpack_node::install::InstallProgress::default()),
        )
        .await
        .unwrap();
    assert_eq!(report.installed.len(), 1, "{report:?}");

    // The DHT records land: B reads the package record from the DHT.
    let key = peerpack_net::protocol::record_key(
        &"github-actions-ci".parse().unwrap(),
        &"1.3.0".parse().unwrap(),
    );
    wait_for("the package record in the DHT", TIMEOUT, || async {
        net.inner(1)
            .net_handle()
            .get_record(key.clone(), Duration::from_secs(5))
            .await
            .ok()
            .filter(|v| !v.is_empty())
    })
    .await;

    // A holds the name's index signed by its own key: the next version needs no DHT read.
    let gets = dht_queries(net.inner(0), "get").await;
    let base = tempfile::tempdir().unwrap();
    let next = base.path().join("next");
    copy_dir(&example("github-actions-ci"), &next);
    let manifest = std::fs::read_to_string(next.join("peerpack.toml")).unwrap();
    std::fs::write(
        next.join("peerpack.toml"),
        manifest.replacen("version = \"1.3.0\"", "version = \"1.4.0\"", 1),
    )
    .unwrap();
    let options = peerpack_node::publish::PublishOptions {
        wait_dht: true,
        ..Default::default()
    };
    let p2 = peerpack_node::publish::publish_with(net.inner(0), next, options)
        .await
        .unwrap();
    assert_eq!(p2.version, "1.4.0");
    assert_eq!(dht_queries(net.inner(0), "get").await, gets, "no DHT read");
    // Asked to wait, the answer says how many peers stored the record.
    assert!(p2.dht_peers.is_some_and(|n| n >= 1), "{p2:?}");
    wait_searchable(net.inner(2), "github", "github-actions-ci").await;
    wait_for("C to hold 1.4.0", TIMEOUT, || async {
        net.inner(2)
            .info("github-actions-ci")
            .await
            .ok()
            .filter(|i| i.versions.iter().any(|v| v.version == "1.4.0"))
    })
    .await;
    net.shutdown().await;
}

//   X ── Y ── Z    (a line: X and Z block each other, so Kademlia cannot connect them)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_line_a_package_published_on_x_reaches_z() {
    let net = TestNet::new(3).await;
    net.inner(0)
        .block_peer(net.node(2).peer_id())
        .await
        .unwrap();
    net.inner(2)
        .block_peer(net.node(0).peer_id())
        .await
        .unwrap();
    net.connect(0, 1).await;
    net.connect(1, 2).await;
    wait_for("Y to see both neighbours", TIMEOUT, || async {
        (net.inner(1).status().await.unwrap().connected_peers == 2).then_some(())
    })
    .await;
    common::publish_alone(net.inner(0), example("python-package"))
        .await
        .unwrap();
    wait_searchable(net.inner(2), "pytest", "python-package").await;
    let z_peers = net.inner(2).peer_views(None);
    assert!(
        z_peers
            .iter()
            .all(|p| p.peer_id != net.node(0).peer_id().to_string() || !p.connected),
        "Z must learn it through Y, not from X directly"
    );
    net.shutdown().await;
}

//   A ── B, ten publishes on A; then C joins by dialling B only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_joins_late_learns_everything_by_sync() {
    let mut net = TestNet::new(2).await;
    net.connect(0, 1).await;
    let packs = examples();
    let base = tempfile::tempdir().unwrap();
    // Ten packages: the six examples plus four variants under new names.
    for dir in &packs {
        peerpack_node::publish::publish(net.inner(0), dir.clone())
            .await
            .unwrap();
    }
    for (i, src) in packs.iter().take(4).enumerate() {
        let dir = base.path().join(format!("variant-{i}"));
        copy_dir(src, &dir);
        let manifest = std::fs::read_to_string(dir.join("peerpack.toml")).unwrap();
        let name_line = manifest
            .lines()
            .find(|l| l.starts_with("name = "))
            .unwrap()
            .to_owned();
        let renamed = manifest.replacen(&name_line, &format!("name = \"late-variant-{i}\""), 1);
        std::fs::write(dir.join("peerpack.toml"), renamed).unwrap();
        peerpack_node::publish::publish(net.inner(0), dir)
            .await
            .unwrap();
    }
    wait_for("B to hold all ten", TIMEOUT, || async {
        (net.inner(1).status().await.unwrap().catalogue_size == 10).then_some(())
    })
    .await;

    let c = net.add().await;
    net.connect(c, 1).await;
    wait_for("C to learn all ten by sync", TIMEOUT, || async {
        (net.inner(c).status().await.unwrap().catalogue_size == 10).then_some(())
    })
    .await;
    wait_searchable(net.inner(c), "late variant", "late-variant-3").await;
    net.shutdown().await;
}

fn copy_dir(src: &std::path::Path, dst: &std::path::Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let t = dst.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_address_without_peer_id_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::loopback(dir.path());
    config.bootstrap = vec!["/ip4/127.0.0.1/tcp/4001".parse().unwrap()];
    let err = Node::start(config).await.err().unwrap();
    let text = err.to_string();
    assert!(
        text.contains("/ip4/127.0.0.1/tcp/4001") && text.contains("/p2p/"),
        "{text}"
    );
    assert!(!dir.path().join("node.json").exists());

    let net = TestNet::new(1).await;
    let err = net
        .inner(0)
        .bootstrap(&["not an address".into()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a multiaddr"), "{err}");
    let err = net
        .inner(0)
        .bootstrap(&["/ip4/127.0.0.1/tcp/1".into()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/p2p/"), "{err}");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_json_is_written_while_running_and_removed_on_exit() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(Config::loopback(dir.path())).await.unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("node.json")).unwrap())
            .unwrap();
    assert_eq!(info["peer_id"], node.peer_id().to_string());
    assert_eq!(info["api"], node.api_url());
    assert!(
        info["listen_addrs"][0]
            .as_str()
            .unwrap()
            .starts_with("/ip4/127.0.0.1/tcp/")
    );
    assert!(
        info["listen_addrs"][0]
            .as_str()
            .unwrap()
            .ends_with(&format!("/p2p/{}", node.peer_id()))
    );
    assert_eq!(info["pid"], std::process::id());
    node.shutdown().await;
    assert!(!dir.path().join("node.json").exists());
    tokio::time::sleep(Duration::from_millis(10)).await;
}

//   A ── B; B stops and starts again on the same data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_its_catalogue_and_peers_and_redials_them() {
    let net = TestNet::new(1).await;
    let dir = tempfile::tempdir().unwrap();
    let b = Node::start(Config::loopback(dir.path())).await.unwrap();
    let b_id = b.peer_id();
    b.inner()
        .bootstrap(&[net.node(0).listen_addrs()[0].to_string()])
        .await
        .unwrap();
    common::publish_alone(net.inner(0), example("rust-cli"))
        .await
        .unwrap();
    wait_searchable(b.inner(), "clap", "rust-cli").await;
    // B keeps a copy of the archive, to serve after its restart.
    b.inner().pin("rust-cli").await.unwrap();
    let a_id = net.node(0).peer_id().to_string();
    wait_for("B to identify A", TIMEOUT, || async {
        b.inner()
            .peer_view(&a_id)
            .ok()
            .filter(|p| !p.agent.is_empty())
    })
    .await;
    b.shutdown().await;

    let b = Node::start(Config::loopback(dir.path())).await.unwrap();
    assert_eq!(b.peer_id(), b_id, "same identity after restart");
    assert_eq!(search(b.inner(), "clap").await[0].name, "rust-cli");
    let a = b.inner().peer_view(&a_id).unwrap();
    assert!(!a.agent.is_empty(), "{a:?}");
    // With no peer connected, B redials the peers it knew, by itself.
    wait_for("B to redial A", TIMEOUT, || async {
        b.inner().peer_view(&a_id).ok().filter(|p| p.connected)
    })
    .await;

    // A leaves: a newcomer that meets only B gets the catalogue and the archive from B.
    let mut net = net;
    net.stop(0).await;
    let c_dir = tempfile::tempdir().unwrap();
    let c = Node::start(Config::loopback(c_dir.path())).await.unwrap();
    c.inner()
        .bootstrap(&[b.listen_addrs()[0].to_string()])
        .await
        .unwrap();
    wait_searchable(c.inner(), "clap", "rust-cli").await;
    c.inner().pin("rust-cli").await.unwrap();
    let status = c.inner().status().await.unwrap();
    assert_eq!(status.archives, 1, "{status:?}");
    c.shutdown().await;
    b.shutdown().await;
    net.shutdown().await;
}

//   A ── B; B asks A for ranges of the archive A published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_ranges_are_served_to_peers() {
    use peerpack_net::blob::{BlobRequest, BlobResponse, MAX_CHUNK};
    use serde_bytes::ByteBuf;

    let net = TestNet::new(2).await;
    net.connect(1, 0).await;
    let p = common::publish_alone(net.inner(0), example("axum-service"))
        .await
        .unwrap();
    let (archive, _) = peerpack_core::archive::pack(&example("axum-service")).unwrap();
    let a = net.node(0).peer_id();
    let b = net.inner(1);
    let ask = |offset: u64, length: u32, id: Vec<u8>| {
        let net = b.net_handle();
        async move {
            net.fetch_chunk(
                a,
                BlobRequest::Range {
                    content_id: ByteBuf::from(id),
                    offset,
                    length,
                },
            )
            .await
            .unwrap()
        }
    };
    let id = p.content_id.as_bytes().to_vec();
    let half = archive.len() as u64 / 2;
    let mut got = Vec::new();
    for (offset, length) in [(0, half as u32), (half, MAX_CHUNK)] {
        match ask(offset, length, id.clone()).await {
            BlobResponse::Chunk {
                offset: o,
                total_size,
                data,
            } => {
                assert_eq!((o, total_size), (offset, archive.len() as u64));
                got.extend_from_slice(&data);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, archive, "two ranges reassemble the exact archive");
    assert_eq!(ask(0, 10, vec![7; 32]).await, BlobResponse::NotFound);
    assert!(matches!(
        ask(0, MAX_CHUNK + 1, id.clone()).await,
        BlobResponse::Refused(_)
    ));
    assert!(matches!(
        ask(archive.len() as u64, 1, id.clone()).await,
        BlobResponse::Refused(_)
    ));
    assert!(matches!(
        ask(0, 10, vec![1; 5]).await,
        BlobResponse::Refused(_)
    ));
    // The outline merges to the content id.
    match b
        .net_handle()
        .fetch_chunk(
            a,
            BlobRequest::Outline {
                content_id: ByteBuf::from(id.clone()),
            },
        )
        .await
        .unwrap()
    {
        BlobResponse::Outline { total_size, values } => {
            let outline = peerpack_core::Outline::new(&p.content_id, total_size, &values).unwrap();
            assert_eq!(outline.size(), archive.len() as u64);
        }
        other => panic!("{other:?}"),
    }
    net.shutdown().await;
}

/// A node whose network event loop stops is broken: `failed` says so (the CLI then stops the
/// node with that error) instead of the node answering its API as if all were well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_network_loop_stops_reports_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(Config::loopback(dir.path())).await.unwrap();
    // Healthy: no failure within a while.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), node.failed())
            .await
            .is_err()
    );
    node.inner().net().shutdown().await.unwrap();
    let e = tokio::time::timeout(TIMEOUT, node.failed())
        .await
        .expect("the failure is reported");
    assert!(e.to_string().contains("network events task stopped"), "{e}");
    node.shutdown().await;
    assert!(!dir.path().join("node.json").exists());
}
