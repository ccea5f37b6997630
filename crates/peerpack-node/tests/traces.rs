//! Spans, captured in memory through the tracing-to-OpenTelemetry layer the CLI installs: a
//! publish, a search and an install across two nodes emit their named spans, and one trace
//! crosses into the network actor; gossip validation, connections, a hostile peer's refused
//! records, its reputation and its block have spans of their own.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{TIMEOUT, TestNet, example, wait_for, wait_searchable};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use peerpack_node::install::{InstallProgress, InstallRequest};
use tracing_subscriber::layer::SubscriberExt;

/// The value of attribute `key` of `span`, as text.
fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| match &kv.value {
            Value::String(s) => s.to_string(),
            other => other.to_string(),
        })
}

/// A record signed by a key of its own, then altered: its signature no longer holds.
fn forged(i: u32) -> Vec<u8> {
    let m = peerpack_core::Manifest::parse(
        "[package]\nname = \"forged-pack\"\nversion = \"1.0.0\"\ndescription = \"d\"\nlicense = \"MIT\"\nauthors = [\"a\"]\n",
        std::path::Path::new("peerpack.toml"),
    )
    .unwrap();
    let mut r = peerpack_core::PackageRecord::sign(
        peerpack_core::record::RecordFields {
            manifest: m,
            content_id: peerpack_core::ContentId::of(b"forged"),
            archive_size: 6,
            seq: 1,
            published_at: 1,
        },
        &peerpack_core::PublisherKey::from_secret_bytes(&[41; 32]),
    )
    .unwrap();
    r.manifest.description = format!("tampered {i}");
    r.encode()
}

/// The chain of span names from `span` up to its root.
fn ancestry(
    span: &SpanData,
    by_id: &HashMap<opentelemetry::trace::SpanId, &SpanData>,
) -> Vec<String> {
    let mut names = vec![span.name.to_string()];
    let mut parent = span.parent_span_id;
    while let Some(p) = by_id.get(&parent) {
        names.push(p.name.to_string());
        parent = p.parent_span_id;
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_search_and_install_emit_their_spans_and_one_trace_crosses_the_actor() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(peerpack_node::otlp::span_layer(&provider));
    // Global: the nodes' work runs on the runtime's threads and the blocking pool.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let net = TestNet::new(2).await;
    net.connect(1, 0).await;
    common::publish_alone(net.inner(0), example("github-actions-ci"))
        .await
        .unwrap();
    wait_searchable(net.inner(1), "github", "github-actions-ci").await;
    let to = tempfile::tempdir().unwrap();
    net.inner(1)
        .install(
            InstallRequest {
                packages: vec!["github-actions-ci".into()],
                to: to.path().join("packs"),
                ..Default::default()
            },
            Arc::new(InstallProgress::default()),
        )
        .await
        .unwrap();

    let spans = wait_for(
        "the spans of the publish, search and install",
        TIMEOUT,
        || {
            let spans = exporter.get_finished_spans().unwrap();
            let has = |n: &str| spans.iter().any(|s| s.name == n);
            let all = [
                "publish_with",
                "publish.dht",
                "dht.put",
                "search",
                "install",
                "fetch",
                "net.blob",
                "blob.serve",
                "store",
                "gossip",
                "net.connection.opened",
                "index.search",
                "install.place",
            ]
            .iter()
            .all(|n| has(n));
            async move { all.then_some(spans) }
        },
    )
    .await;
    let by_id: HashMap<_, _> = spans
        .iter()
        .map(|s| (s.span_context.span_id(), s))
        .collect();

    // The DHT writes of the publish run after it returns, in a trace of their own linked to
    // the publish; the write in the network actor is a child of them.
    let put = spans
        .iter()
        .find(|s| s.name == "dht.put" && ancestry(s, &by_id).contains(&"publish.dht".to_owned()))
        .unwrap_or_else(|| {
            panic!(
                "no dht.put under publish.dht: {:?}",
                spans
                    .iter()
                    .filter(|s| s.name == "dht.put")
                    .map(|s| ancestry(s, &by_id))
                    .collect::<Vec<_>>()
            )
        });
    let writes = by_id[&put.parent_span_id];
    assert_eq!(
        put.span_context.trace_id(),
        writes.span_context.trace_id(),
        "one trace"
    );
    let publish_with = spans.iter().find(|s| s.name == "publish_with").unwrap();
    assert!(
        writes
            .links
            .iter()
            .any(|l| l.span_context.span_id() == publish_with.span_context.span_id()),
        "publish.dht links to the publish: {:?}",
        writes.links
    );
    assert_eq!(attr(writes, "result").as_deref(), Some("ok"));
    assert!(
        put.attributes.iter().any(|kv| kv.key.as_str() == "result"),
        "the put span says how it ended: {:?}",
        put.attributes
    );
    // A piece request of the install sits under fetch, under install.
    let blob = spans
        .iter()
        .find(|s| s.name == "net.blob")
        .map(|s| ancestry(s, &by_id))
        .unwrap();
    assert!(
        blob.contains(&"fetch".to_owned()) && blob.contains(&"install".to_owned()),
        "{blob:?}"
    );
    // The work's spans say what it was about and how it ended.
    let fetch = spans.iter().find(|s| s.name == "fetch").unwrap();
    for key in ["id", "size", "cached"] {
        assert!(
            attr(fetch, key).is_some(),
            "{key} in {:?}",
            fetch.attributes
        );
    }
    assert_eq!(attr(fetch, "result").as_deref(), Some("ok"));
    let install = spans.iter().find(|s| s.name == "install").unwrap();
    assert_eq!(attr(install, "result").as_deref(), Some("ok"));
    let publish = spans.iter().find(|s| s.name == "publish_with").unwrap();
    assert_eq!(
        attr(publish, "package").as_deref(),
        Some("github-actions-ci")
    );
    assert_eq!(attr(publish, "result").as_deref(), Some("ok"));
    // Store calls name their operation and their wait for the lock.
    let store = spans.iter().find(|s| s.name == "store").unwrap();
    for key in ["operation", "lock_wait_us"] {
        assert!(
            store.attributes.iter().any(|kv| kv.key.as_str() == key),
            "{key} in {:?}",
            store.attributes
        );
    }
    // The search of the index ran on the blocking pool, still under the search.
    let index_search = spans.iter().find(|s| s.name == "index.search").unwrap();
    assert!(
        ancestry(index_search, &by_id).contains(&"search".to_owned()),
        "{:?}",
        ancestry(index_search, &by_id)
    );
    // The receiver validated the announcement in a gossip span that says how it ended.
    let b_id = net.node(1).peer_id().to_string();
    let a_id = net.node(0).peer_id().to_string();
    assert!(
        spans.iter().any(|s| s.name == "gossip"
            && attr(s, "result").as_deref() == Some("accept")
            && attr(s, "peer") == Some(a_id.clone())),
        "no accepted gossip from A: {:?}",
        spans
            .iter()
            .filter(|s| s.name == "gossip")
            .map(|s| &s.attributes)
            .collect::<Vec<_>>()
    );
    assert!(
        spans
            .iter()
            .any(|s| s.name == "net.connection.opened" && attr(s, "peer") == Some(b_id.clone())),
        "A's side of the connection to B has no span"
    );

    // A hostile peer writes forged records into B's DHT store: each refusal is a span that
    // names the rule and the peer, each costs it reputation in a span, and the block is one.
    let m_key = peerpack_net::p2p::identity::Keypair::generate_ed25519();
    let m_id = m_key.public().to_peer_id().to_string();
    let m = common::bare_peer(m_key, &net, 1).await;
    wait_for("M to connect to B", TIMEOUT, || async {
        m.handle
            .peers()
            .await
            .ok()
            .filter(|p| p.iter().any(|p| p.peer_id.to_string() == b_id))
    })
    .await;
    for i in 0..8 {
        let key = peerpack_net::protocol::record_key(
            &peerpack_core::PackageName::new("forged-pack").unwrap(),
            &peerpack_core::Version::parse("1.0.0").unwrap(),
        );
        let _ = m.handle.put_record(key, forged(i)).await;
    }
    let spans = wait_for("B's spans of M's refusals and block", TIMEOUT, || {
        let spans = exporter.get_finished_spans().unwrap();
        let of_m = |n: &str| {
            spans
                .iter()
                .any(|s| s.name == n && attr(s, "peer") == Some(m_id.clone()))
        };
        let all = of_m("refused") && of_m("reputation") && of_m("reputation.block");
        async move { all.then_some(spans) }
    })
    .await;
    let refused = spans
        .iter()
        .find(|s| s.name == "refused" && attr(s, "peer") == Some(m_id.clone()))
        .unwrap();
    assert_eq!(attr(refused, "what").as_deref(), Some("record"));
    assert_eq!(attr(refused, "via").as_deref(), Some("dht"));
    assert_eq!(attr(refused, "reason").as_deref(), Some("invalid"));
    let penalty = spans
        .iter()
        .find(|s| s.name == "reputation" && attr(s, "peer") == Some(m_id.clone()))
        .unwrap();
    assert_eq!(attr(penalty, "event").as_deref(), Some("invalid_message"));
    let (before, after) = (
        attr(penalty, "before").unwrap().parse::<f64>().unwrap(),
        attr(penalty, "after").unwrap().parse::<f64>().unwrap(),
    );
    assert!(
        after < before,
        "a penalty lowered nothing: {before} → {after}"
    );
    // And B's status counts them.
    let status = net.inner(1).status().await.unwrap();
    assert!(
        status
            .refusals
            .iter()
            .any(|r| r.what == "record" && r.via == "dht" && r.reason == "invalid" && r.count >= 1),
        "{:?}",
        status.refusals
    );
    assert_eq!(status.blocked_peers, 1);
    m.handle.shutdown().await.unwrap();
    net.shutdown().await;
    let _ = provider.shutdown();
}
