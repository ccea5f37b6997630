//! Spans, captured in memory through the tracing-to-OpenTelemetry layer the CLI installs: a
//! publish, a search and an install across two nodes emit their named spans, and one trace
//! crosses into the network actor.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{TIMEOUT, TestNet, example, wait_for, wait_searchable};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use peerpack_node::install::{InstallProgress, InstallRequest};
use tracing_subscriber::layer::SubscriberExt;

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
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("peerpack-test")));
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
                "dht.put",
                "search",
                "install",
                "fetch",
                "net.blob",
                "store",
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

    // The DHT write the publish made in the network actor is a child of the publish.
    let put = spans
        .iter()
        .find(|s| s.name == "dht.put" && ancestry(s, &by_id).contains(&"publish_with".to_owned()))
        .unwrap_or_else(|| {
            panic!(
                "no dht.put under publish_with: {:?}",
                spans
                    .iter()
                    .filter(|s| s.name == "dht.put")
                    .map(|s| ancestry(s, &by_id))
                    .collect::<Vec<_>>()
            )
        });
    let publish = by_id[&put.parent_span_id];
    assert_eq!(
        put.span_context.trace_id(),
        publish.span_context.trace_id(),
        "one trace"
    );
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
    // Store calls name their operation and their wait for the lock.
    let store = spans.iter().find(|s| s.name == "store").unwrap();
    for key in ["operation", "lock_wait_us"] {
        assert!(
            store.attributes.iter().any(|kv| kv.key.as_str() == key),
            "{key} in {:?}",
            store.attributes
        );
    }
    net.shutdown().await;
    let _ = provider.shutdown();
}
