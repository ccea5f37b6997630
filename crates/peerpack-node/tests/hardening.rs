//! Remote work is bounded: hostile sync peers, request floods and repeated records, each tried
//! by a bare libp2p peer (peerpack's network layer with a hand-written answer) against a real
//! node.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{TIMEOUT, TestNet, wait_for};
use peerpack_core::record::RecordFields;
use peerpack_core::{ContentId, Manifest, PackageRecord, PublisherKey};
use peerpack_net::p2p::identity;
use peerpack_net::sync::{SyncRequest, SyncResponse};
use peerpack_net::{Event, NetHandle};
use serde_bytes::ByteBuf;

fn record() -> PackageRecord {
    let m = Manifest::parse(
        "[package]\nname = \"sync-pack\"\nversion = \"1.0.0\"\ndescription = \"d\"\nlicense = \"MIT\"\nauthors = [\"a\"]\n",
        Path::new("peerpack.toml"),
    )
    .unwrap();
    PackageRecord::sign(
        RecordFields {
            manifest: m,
            content_id: ContentId::of(b"sync"),
            archive_size: 4,
            seq: 1,
            published_at: 1,
        },
        &PublisherKey::from_secret_bytes(&[31; 32]),
    )
    .unwrap()
}

/// A bare peer that dials node `target` and answers every sync request with `answer(request,
/// n)`, where `n` counts the requests so far (from 1). Returns its handle and the counter.
async fn sync_peer(
    net: &TestNet,
    target: usize,
    answer: impl Fn(&SyncRequest, u64) -> SyncResponse + Send + Sync + 'static,
) -> (NetHandle, String, Arc<AtomicU64>) {
    let key = identity::Keypair::generate_ed25519();
    let id = key.public().to_peer_id().to_string();
    let listen = vec![peerpack_node::config::loopback_listen()];
    let spawned = peerpack_net::spawn(peerpack_net::Config::new(key, listen))
        .await
        .unwrap();
    let handle = spawned.handle.clone();
    let count = Arc::new(AtomicU64::new(0));
    let (h, c) = (handle.clone(), count.clone());
    let mut events = spawned.events;
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let Event::SyncRequested {
                request, channel, ..
            } = event
            {
                let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = h.sync_respond(channel, answer(&request, n)).await;
            }
        }
    });
    handle
        .dial(net.node(target).listen_addrs()[0].clone())
        .await
        .unwrap();
    (handle, id, count)
}

fn summary(count: u64) -> SyncResponse {
    SyncResponse::Summary {
        count,
        digest: ByteBuf::from(vec![7; 32]),
    }
}

/// Wait a little, then check that `count` stopped moving: the pull is over.
async fn settled(count: &AtomicU64) -> u64 {
    loop {
        let before = count.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(500)).await;
        if count.load(Ordering::SeqCst) == before {
            return before;
        }
    }
}

// M answers pages whose cursors go back and forth: B stops at the first step back and blames M.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_peer_with_cycling_cursors_is_stopped_and_penalised() {
    let net = TestNet::new(1).await;
    let bytes = record().encode();
    let (m, m_id, requests) = sync_peer(&net, 0, move |req, n| match req {
        SyncRequest::Summary => summary(1_000_000),
        SyncRequest::Page { .. } => SyncResponse::Page {
            records: vec![ByteBuf::from(bytes.clone())],
            next: Some(if n % 2 == 0 { "a/1.0.0" } else { "b/1.0.0" }.into()),
        },
    })
    .await;
    let b = net.inner(0);
    wait_for("B to blame M", TIMEOUT, || async {
        b.peer_view(&m_id).ok().filter(|p| p.invalid_messages >= 1)
    })
    .await;
    let asked = settled(&requests).await;
    assert!(asked <= 4, "B asked a cycling peer {asked} times");
    m.shutdown().await.unwrap();
    net.shutdown().await;
}

// M claims 3 records but never ends its catalogue (every cursor moves forward): B stops when
// the pages exceed what 3 records can fill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_never_ends_is_stopped_within_its_page_budget() {
    let net = TestNet::new(1).await;
    let bytes = record().encode();
    let (m, m_id, requests) = sync_peer(&net, 0, move |req, n| match req {
        SyncRequest::Summary => summary(3),
        SyncRequest::Page { .. } => SyncResponse::Page {
            records: vec![ByteBuf::from(bytes.clone())],
            next: Some(format!("p{n:09}/1.0.0")),
        },
    })
    .await;
    let b = net.inner(0);
    wait_for("B to blame M", TIMEOUT, || async {
        b.peer_view(&m_id).ok().filter(|p| p.invalid_messages >= 1)
    })
    .await;
    let asked = settled(&requests).await;
    // One summary and at most count + 1 = 4 pages.
    assert!(asked <= 5, "B asked an endless peer {asked} times");
    m.shutdown().await.unwrap();
    net.shutdown().await;
}

// M sends one valid record 200 times in one page: it is stored once and credited once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_records_are_credited_once() {
    let net = TestNet::new(1).await;
    let bytes = record().encode();
    let (m, m_id, _) = sync_peer(&net, 0, move |req, _| match req {
        SyncRequest::Summary => summary(200),
        SyncRequest::Page { .. } => SyncResponse::Page {
            records: vec![ByteBuf::from(bytes.clone()); 200],
            next: None,
        },
    })
    .await;
    let b = net.inner(0);
    let view = wait_for("B to credit M", TIMEOUT, || async {
        b.peer_view(&m_id).ok().filter(|p| p.valid_records >= 1)
    })
    .await;
    assert_eq!(view.valid_records, 1);
    assert_eq!(view.invalid_messages, 0);
    assert_eq!(b.status().await.unwrap().catalogue_size, 1);
    m.shutdown().await.unwrap();
    net.shutdown().await;
}

// M floods B with sync requests at once: B answers a bounded number and tells the rest it is
// busy; an honest request afterwards (once the rate refills) is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_sync_requests_is_bounded_per_peer() {
    let net = TestNet::new(1).await;
    let b_id = net.node(0).peer_id();
    let (m, _, _) = sync_peer(&net, 0, |_, _| summary(0)).await;
    wait_for("M to connect", TIMEOUT, || async {
        m.peers()
            .await
            .ok()
            .filter(|p| p.iter().any(|p| p.peer_id == b_id))
    })
    .await;
    let answers =
        futures::future::join_all((0..200).map(|_| m.sync(b_id, SyncRequest::Summary))).await;
    let busy = answers
        .iter()
        .filter(|a| matches!(a, Ok(SyncResponse::Error(e)) if e.starts_with("busy")))
        .count();
    let answered = answers
        .iter()
        .filter(|a| matches!(a, Ok(SyncResponse::Summary { .. })))
        .count();
    assert!(busy > 0, "no request of 200 was refused");
    assert!(
        answered <= peerpack_node::sync::SYNC_BURST as usize + 32,
        "{answered} of 200 answered"
    );
    // The node counts what it refused, by rule, and `status` shows it.
    let refused: u64 = net
        .inner(0)
        .status()
        .await
        .unwrap()
        .refusals
        .iter()
        .filter(|r| r.what == "request" && r.via == "sync")
        .map(|r| r.count)
        .sum();
    assert_eq!(refused, busy as u64, "refused {busy}, counted {refused}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(matches!(
        m.sync(b_id, SyncRequest::Summary).await,
        Ok(SyncResponse::Summary { .. })
    ));
    m.shutdown().await.unwrap();
    net.shutdown().await;
}

// M keeps writing forged records: after enough of them B disconnects and blocks it, the
// block survives B's restart, and `unblock` lifts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistently_bad_peer_is_disconnected_and_blocked_across_restarts() {
    let mut net = TestNet::new(1).await;
    let m_key = identity::Keypair::generate_ed25519();
    let m_id = m_key.public().to_peer_id();
    let m = common::bare_peer(m_key, &net, 0).await;
    let b_id = net.node(0).peer_id();
    let connected_to_b = |h: NetHandle| async move {
        h.peers()
            .await
            .map(|p| p.iter().any(|p| p.peer_id == b_id))
            .unwrap_or(false)
    };
    wait_for("M to connect", TIMEOUT, || async {
        connected_to_b(m.handle.clone()).await.then_some(())
    })
    .await;
    // Forged DHT writes (gossip would graylist M by itself after two forgeries, and stop
    // reading it).
    for i in 0..8 {
        let mut forged = record();
        forged.manifest.description = format!("tampered {i}");
        let key = peerpack_net::protocol::record_key(forged.name(), forged.version());
        // Once blocked, M's writes fail: that is the point.
        let _ = m.handle.put_record(key, forged.encode()).await;
    }
    let b = net.inner(0);
    let view = wait_for("B to block M", TIMEOUT, || async {
        b.peer_view(&m_id.to_string())
            .ok()
            .filter(|p| p.blocked_until > 0)
    })
    .await;
    assert!(view.invalid_messages >= peerpack_node::reputation::BLOCK_EVIDENCE);
    assert!(
        view.score < peerpack_node::reputation::BLOCK_BELOW,
        "{}",
        view.score
    );
    wait_for("B to drop M's connection", TIMEOUT, || async {
        (!connected_to_b(m.handle.clone()).await).then_some(())
    })
    .await;
    assert_eq!(b.blocked_views()[0].peer_id, m_id.to_string());

    // Still blocked after a restart: M's dial is refused.
    net.stop(0).await;
    net.restart(0).await;
    let b = net.inner(0).clone();
    assert_eq!(b.blocked_views().len(), 1, "the block was not kept");
    m.handle
        .dial(net.node(0).listen_addrs()[0].clone())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !connected_to_b(m.handle.clone()).await,
        "a blocked peer reconnected after a restart"
    );

    // Unblocked, it may connect again, with a clean record.
    assert!(b.unblock(&m_id.to_string()).await.unwrap());
    assert!(b.blocked_views().is_empty());
    m.handle
        .dial(net.node(0).listen_addrs()[0].clone())
        .await
        .unwrap();
    wait_for("M to reconnect", TIMEOUT, || async {
        connected_to_b(m.handle.clone()).await.then_some(())
    })
    .await;
    assert_eq!(b.peer_view(&m_id.to_string()).unwrap().invalid_messages, 0);
    m.handle.shutdown().await.unwrap();
    net.shutdown().await;
}

// M announces itself as the provider of 1,100 archives: B keeps the first 1,024 and refuses
// the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_provider_flood_is_capped_per_peer() {
    let net = TestNet::new(1).await;
    let m_key = identity::Keypair::generate_ed25519();
    let m_id = m_key.public().to_peer_id().to_string();
    let m = common::bare_peer(m_key, &net, 0).await;
    let b = net.inner(0);
    wait_for("B to put M in its routing table", TIMEOUT, || async {
        b.peer_view(&m_id).ok().filter(|p| !p.agent.is_empty())
    })
    .await;
    let cap = u64::from(peerpack_net::actor::MAX_PROVIDER_RECORDS_PER_PEER);
    let flood = cap + 76;
    for i in 0..flood {
        let id = ContentId::of(format!("archive {i}").as_bytes());
        m.handle
            .start_providing(peerpack_net::protocol::provider_key(&id))
            .await
            .unwrap();
    }
    let status = wait_for(
        "B to refuse the records over the quota",
        TIMEOUT,
        || async {
            b.status()
                .await
                .ok()
                .filter(|s| s.refused_provider_records >= flood - cap)
        },
    )
    .await;
    assert_eq!(status.refused_provider_records, flood - cap);
    m.handle.shutdown().await.unwrap();
    net.shutdown().await;
}

// Three identities of one operator (each within its per-peer quota) announce 300 archives to
// B, which keeps at most 200 provider records of other peers: B keeps 200 and refuses 100 as
// full. A provider announcing again what B already holds is still heard. After a restart B
// counts the 200 it holds from its database, and its status says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sybils_cannot_fill_a_nodes_provider_store_past_its_bound() {
    const MAX: u64 = 200;
    let mut net = TestNet::new(0).await;
    net.add_with(|c| c.max_provider_records = MAX).await;
    let b = net.inner(0).clone();
    let announce = |m: &common::Bare, from: u64, to: u64| {
        let handle = m.handle.clone();
        async move {
            for i in from..to {
                let id = ContentId::of(format!("archive {i}").as_bytes());
                handle
                    .start_providing(peerpack_net::protocol::provider_key(&id))
                    .await
                    .unwrap();
            }
        }
    };
    let mut sybils = Vec::new();
    for s in 0..3u64 {
        let key = identity::Keypair::generate_ed25519();
        let id = key.public().to_peer_id().to_string();
        let m = common::bare_peer(key, &net, 0).await;
        wait_for(
            "B to put the sybil in its routing table",
            TIMEOUT,
            || async { b.peer_view(&id).ok().filter(|p| !p.agent.is_empty()) },
        )
        .await;
        announce(&m, s * 100, s * 100 + 100).await;
        sybils.push(m);
    }
    let full = |s: &peerpack_api::StatusView| {
        s.refusals
            .iter()
            .find(|r| r.what == "provider_record" && r.reason == "full")
            .map_or(0, |r| r.count)
    };
    let status = wait_for(
        "B to refuse the records past its bound",
        TIMEOUT,
        || async { b.status().await.ok().filter(|s| full(s) >= 100) },
    )
    .await;
    assert_eq!(full(&status), 100, "{:?}", status.refusals);
    assert_eq!(status.dht.provider_records, MAX);
    assert_eq!(status.dht.max_provider_records, MAX);
    assert_eq!(
        status.refused_provider_records, 0,
        "no peer was over its quota"
    );

    // The first sybil announces its 100 again, then one new archive: only the new one is
    // refused.
    announce(&sybils[0], 0, 100).await;
    announce(&sybils[0], 1000, 1001).await;
    wait_for("B to refuse the new archive", TIMEOUT, || async {
        b.status().await.ok().filter(|s| full(s) >= 101)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = b.status().await.unwrap();
    assert_eq!(
        full(&status),
        101,
        "announcing again what B holds is not refused"
    );
    assert_eq!(status.dht.provider_records, MAX);

    for m in sybils {
        m.handle.shutdown().await.unwrap();
    }
    drop(b);
    net.stop(0).await;
    // A refused record leaves no trace in the node's list of providers either.
    {
        let store = peerpack_store::Store::open(net.data_dir(0)).unwrap();
        let known = (0..300u64)
            .chain([1000])
            .filter(|i| {
                let id = ContentId::of(format!("archive {i}").as_bytes());
                !store.db.providers(&id).unwrap().is_empty()
            })
            .count();
        assert_eq!(known, 200);
    }
    net.restart(0).await;
    let status = net.inner(0).status().await.unwrap();
    assert_eq!(
        status.dht.provider_records, MAX,
        "counted from the database"
    );
    net.shutdown().await;
}

// M announces 70 KiB of junk, more than any record can be: it costs M like any invalid
// message, in B's reputation and in gossipsub's score.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_announcement_costs_its_sender() {
    let net = TestNet::new(1).await;
    let m_key = identity::Keypair::generate_ed25519();
    let m_id = m_key.public().to_peer_id();
    let m = common::bare_peer(m_key, &net, 0).await;
    let b = net.inner(0);
    m.handle.announce(vec![0x55; 70 * 1024]).await.unwrap();
    wait_for("B to count the oversized message", TIMEOUT, || async {
        b.peer_view(&m_id.to_string())
            .ok()
            .filter(|p| p.invalid_messages >= 1)
    })
    .await;
    let score = wait_for("B's gossip score of M to fall", TIMEOUT, || async {
        b.net_handle()
            .gossip_score(m_id)
            .await
            .unwrap()
            .filter(|s| *s < 0.0)
    })
    .await;
    assert!(score < -10.0, "{score}");
    m.handle.shutdown().await.unwrap();
    net.shutdown().await;
}

// M writes into B's DHT store a curator list signed by a key B does not trust, and a stale
// record: B holds neither, and counts each under its own rule (`untrusted`, `stale`), not
// under a catch-all, naming M.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_over_the_dht_are_counted_by_their_rule() {
    let net = TestNet::new(1).await;
    let m_key = identity::Keypair::generate_ed25519();
    let m = common::bare_peer(m_key, &net, 0).await;
    let b_id = net.node(0).peer_id();
    wait_for("M to connect", TIMEOUT, || async {
        m.handle
            .peers()
            .await
            .ok()
            .filter(|p| p.iter().any(|p| p.peer_id == b_id))
    })
    .await;
    let curator = PublisherKey::from_secret_bytes(&[77; 32]);
    let list = peerpack_core::CuratorList::sign(
        [(
            peerpack_core::PackageName::new("sync-pack").unwrap(),
            curator.public(),
        )]
        .into(),
        1,
        1,
        &curator,
    )
    .unwrap();
    let _ = m
        .handle
        .put_record(
            peerpack_net::protocol::curator_key(&curator.public()),
            list.encode(),
        )
        .await;
    // A record, then an older one of the same version: the second is a replay.
    let newer = record();
    b_store(&net, &newer).await;
    let older = PackageRecord::sign(
        RecordFields {
            manifest: newer.manifest.clone(),
            content_id: newer.content_id,
            archive_size: newer.archive_size,
            seq: 0,
            published_at: 0,
        },
        &PublisherKey::from_secret_bytes(&[31; 32]),
    )
    .unwrap();
    let _ = m
        .handle
        .put_record(
            peerpack_net::protocol::record_key(older.name(), older.version()),
            older.encode(),
        )
        .await;
    let status = wait_for("B to count both refusals", TIMEOUT, || async {
        let s = net.inner(0).status().await.unwrap();
        let has = |reason: &str| {
            s.refusals
                .iter()
                .any(|r| r.what == "record" && r.via == "dht" && r.reason == reason)
        };
        (has("untrusted") && has("stale")).then_some(s)
    })
    .await;
    assert!(
        !status
            .refusals
            .iter()
            .any(|r| r.reason == "invalid" || r.reason == "skipped"),
        "{:?}",
        status.refusals
    );
    m.handle.shutdown().await.unwrap();
    net.shutdown().await;
}

/// Store `r` on node 0 as if it had come by gossip.
async fn b_store(net: &TestNet, r: &PackageRecord) {
    peerpack_node::ingest::records(
        net.inner(0),
        vec![r.encode()],
        None,
        peerpack_node::ingest::Via::Gossip,
    )
    .await
    .unwrap();
}

// Twenty identities dial B, which keeps at most 8 peers: B lets the least used go, down to
// two thirds of its limit where it can, and keeps the peer its operator asked it to dial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_identities_cannot_hold_more_connections_than_the_node_keeps() {
    let mut net = TestNet::new(1).await;
    let b = net
        .add_with(|c| {
            c.max_peers = 8;
            c.trim_grace = Duration::from_secs(1);
        })
        .await;
    // The operator's peer: B dials it on request.
    net.inner(b)
        .bootstrap(&[net.node(0).listen_addrs()[0].to_string()])
        .await
        .unwrap();
    let a_id = net.node(0).peer_id();
    let mut crowd = Vec::new();
    for _ in 0..20 {
        crowd.push(common::bare_peer(identity::Keypair::generate_ed25519(), &net, b).await);
    }
    wait_for("B to see the crowd", TIMEOUT, || async {
        let s = net.inner(b).status().await.unwrap();
        (s.connected_peers > 8).then_some(())
    })
    .await;
    let s = wait_for("B to trim its connections to 8", TIMEOUT, || async {
        let s = net.inner(b).status().await.unwrap();
        (s.connected_peers <= 8).then_some(s)
    })
    .await;
    assert!(s.connected_peers >= 1, "B let every peer go");
    let peers = net.inner(b).peer_views(None);
    assert!(
        peers
            .iter()
            .any(|p| p.connected && p.peer_id == a_id.to_string()),
        "B let go of the peer its operator asked for"
    );
    // It stays trimmed: the crowd does not come back by itself. (B's own Kademlia refreshes
    // may dial some of them again for a moment; the next trim round lets them go.)
    tokio::time::sleep(Duration::from_secs(6)).await;
    wait_for("B to stay at 8", Duration::from_secs(12), || async {
        (net.inner(b).status().await.unwrap().connected_peers <= 8).then_some(())
    })
    .await;
    let trimmed = trimmed(net.inner(b)).await;
    assert!(trimmed >= 12, "{trimmed} trimmed");
    for m in crowd {
        m.handle.shutdown().await.unwrap();
    }
    net.shutdown().await;
}

/// `peerpack_connections_trimmed_total` of a node, read from its `/metrics`.
async fn trimmed(inner: &std::sync::Arc<peerpack_node::Context>) -> u64 {
    use tower::ServiceExt;
    let resp = peerpack_node::api::router(inner.clone())
        .oneshot(
            axum::http::Request::builder()
                .uri("/metrics")
                .header("host", "127.0.0.1")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let body = axum::body::to_bytes(resp.into_body(), 8 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.lines()
        .find(|l| l.starts_with("peerpack_connections_trimmed_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
}

// B keeps at most 8 peers and is the bootstrap peer of twelve nodes, each connected to eight
// others besides. B trims the connections it does not need; the nodes it let go have peers
// enough and do not dial it straight back, so B's trims stop instead of repeating every round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_a_busy_bootstrap_peer_let_go_do_not_come_straight_back() {
    let mut net = TestNet::new(0).await;
    let b = net
        .add_with(|c| {
            c.max_peers = 8;
            c.trim_grace = Duration::from_secs(1);
        })
        .await;
    // B is in each node's configuration, as a bootstrap peer.
    let b_addr = net.node(b).listen_addrs()[0].clone();
    let mut crowd = Vec::new();
    for _ in 0..12 {
        crowd.push(net.add_with(|c| c.bootstrap = vec![b_addr.clone()]).await);
    }
    for (k, &i) in crowd.iter().enumerate() {
        for d in 1..=4 {
            net.connect(i, crowd[(k + d) % crowd.len()]).await;
        }
    }
    let first = wait_for("B to trim its connections to 8", TIMEOUT, || async {
        let s = net.inner(b).status().await.unwrap();
        let t = trimmed(net.inner(b)).await;
        (s.connected_peers <= 8 && t >= 4).then_some(t)
    })
    .await;
    // Three trim rounds.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let later = trimmed(net.inner(b)).await;
    assert!(
        later <= first + 1,
        "B trimmed {first} connections, then {} more: the nodes it let go came back",
        later - first
    );
    assert!(net.inner(b).status().await.unwrap().connected_peers <= 8);
    // They still have their other peers; B shows as reached, not waiting to be redialled.
    for &i in &crowd {
        let s = net.inner(i).status().await.unwrap();
        assert!(s.connected_peers >= 4, "{}", s.connected_peers);
    }
    net.shutdown().await;
}

// A read of a version record by the hash its index names ends at the first value with that
// hash. M serves a forged value under the same key: it neither ends the read nor is answered.
// The reader X is a bare peer with an empty DHT store, so every value comes over the network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_by_hash_ends_only_at_the_value_with_that_hash() {
    let net = TestNet::new(1).await;
    let published = common::publish_alone(net.inner(0), common::example("github-actions-ci"))
        .await
        .unwrap();
    let name = peerpack_core::PackageName::new(&published.name).unwrap();
    let version = peerpack_core::Version::parse(&published.version).unwrap();
    let key = peerpack_net::protocol::record_key(&name, &version);
    let genuine = net
        .inner(0)
        .net_handle()
        .get_record(key.clone(), Duration::from_secs(5))
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let genuine_hash = peerpack_core::RecordHash::of(&genuine).0;
    // M holds a forged value under the same key, and serves it to whoever asks.
    let m = common::bare_peer(identity::Keypair::generate_ed25519(), &net, 0).await;
    let x = common::bare_peer(identity::Keypair::generate_ed25519(), &net, 0).await;
    let mut forged = PackageRecord::decode(&genuine).unwrap();
    forged.manifest.description = "forged".into();
    let forged = forged.encode();
    let _ = m.handle.put_record(key.clone(), forged.clone()).await;
    // X asks until it has met both (the forged value reaches it either from M or in its own
    // store, which M's write may have filled).
    wait_for("X to see the forged value too", TIMEOUT, || async {
        x.handle
            .get_record(key.clone(), Duration::from_secs(5))
            .await
            .ok()
            .filter(|v| v.contains(&forged) && v.contains(&genuine))
    })
    .await;
    for _ in 0..5 {
        let value = x
            .handle
            .get_record_hashed(key.clone(), genuine_hash, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(value.as_deref(), Some(genuine.as_slice()));
    }
    // A hash no value has: the read runs to its end and answers nothing.
    assert_eq!(
        x.handle
            .get_record_hashed(key.clone(), [7; 32], Duration::from_secs(10))
            .await
            .unwrap(),
        None
    );
    m.handle.shutdown().await.unwrap();
    x.handle.shutdown().await.unwrap();
    net.shutdown().await;
}

/// A bare peer on its own thread and runtime that the test can freeze: while frozen its
/// connections stay open, but nothing it receives is answered, as a peer that hangs would.
/// Sending a receiver on `freeze` freezes it until a message arrives on that receiver.
struct Freezable {
    handle: NetHandle,
    freeze: std::sync::mpsc::Sender<std::sync::mpsc::Receiver<()>>,
}

fn freezable_peer(target: peerpack_net::p2p::Multiaddr) -> Freezable {
    use std::sync::mpsc::{TryRecvError, channel};
    let (handle_tx, handle_rx) = channel();
    let (freeze, frozen) = channel::<std::sync::mpsc::Receiver<()>>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listen = vec![peerpack_node::config::loopback_listen()];
            let key = identity::Keypair::generate_ed25519();
            let spawned = peerpack_net::spawn(peerpack_net::Config::new(key, listen))
                .await
                .unwrap();
            let mut events = spawned.events;
            tokio::spawn(async move { while events.recv().await.is_some() {} });
            spawned.handle.dial(target).await.unwrap();
            handle_tx.send(spawned.handle.clone()).unwrap();
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                match frozen.try_recv() {
                    // Blocks the runtime's only thread: every task of the peer stops.
                    Ok(thaw) => drop(thaw.recv()),
                    Err(TryRecvError::Disconnected) => break,
                    Err(TryRecvError::Empty) => {}
                }
            }
        });
    });
    Freezable {
        handle: handle_rx.recv().unwrap(),
        freeze,
    }
}

// A provider record whose publishing query fails is published again soon, not at the next
// republish round hours later. A's only peer M hangs while A publishes, so the query that
// gives M the provider record times out. Once M answers again, A's retry gives it: M still
// names A as a provider of the archive after A has gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_record_whose_publishing_timed_out_is_published_again_soon() {
    let mut net = TestNet::new(0).await;
    let a = net
        .add_with(|c| c.query_timeout = Duration::from_secs(2))
        .await;
    let m = freezable_peer(net.node(a).listen_addrs()[0].clone());
    wait_for("A to hold M in its routing table", TIMEOUT, || async {
        let s = net.inner(a).status().await.unwrap();
        (s.routing_table_size >= 1).then_some(())
    })
    .await;
    let (thaw, thawed) = std::sync::mpsc::channel();
    m.freeze.send(thawed).unwrap();
    let published = common::publish_alone(net.inner(a), common::example("github-actions-ci"))
        .await
        .unwrap();
    // The provide query times out after 2 s; the first retry comes 5 s after that.
    tokio::time::sleep(Duration::from_secs(3)).await;
    thaw.send(()).unwrap();
    let key = peerpack_net::protocol::provider_key(&published.content_id);
    let a_id = net.node(a).peer_id();
    // M holds the record once A's retry has reached it; asked while A is still up, M's
    // lookup would also find A by asking A, so the check is made with A gone.
    tokio::time::sleep(Duration::from_secs(12)).await;
    net.stop(a).await;
    let providers = m
        .handle
        .get_providers(key, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        providers.contains(&a_id),
        "M was never given A's provider record after the first query timed out: {providers:?}"
    );
    net.shutdown().await;
}
