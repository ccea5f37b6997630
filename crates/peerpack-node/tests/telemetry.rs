//! Metrics: what `/metrics` serves after real work across two nodes.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TIMEOUT, TestNet, example, wait_for, wait_searchable};
use tower::ServiceExt;

/// GET `uri` on node `i`'s API with `host` as the Host header.
async fn get(net: &TestNet, i: usize, uri: &str, host: &str) -> (StatusCode, String, String) {
    let router = peerpack_node::api::router(net.inner(i).clone());
    let req = Request::builder()
        .method("GET")
        .uri(uri)
        .header("host", host)
        .body(Body::empty())
        .unwrap();
    let resp = router.oneshot(req).await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(resp.into_body(), 8 << 20)
        .await
        .unwrap();
    (status, ctype, String::from_utf8(bytes.to_vec()).unwrap())
}

/// Parse the Prometheus text format strictly enough to catch a malformed line: every sample is
/// `name{labels} value`, every sample belongs to a family declared by `# TYPE`. Answers each
/// sample's value by its name and labels as written.
fn parse(text: &str) -> HashMap<String, f64> {
    let sample =
        regex::Regex::new(r#"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$"#)
            .unwrap();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                [
                    "counter",
                    "gauge",
                    "histogram",
                    "summary",
                    "unknown",
                    "info",
                    "stateset",
                    "gaugehistogram"
                ]
                .contains(&kind),
                "unknown type in {line:?}"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "family {name} declared twice"
            );
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let c = sample
            .captures(line)
            .unwrap_or_else(|| panic!("not a Prometheus sample: {line:?}"));
        let name = &c[1];
        let value: f64 = match &c[3] {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let family = ["_bucket", "_sum", "_count", "_total", "_created", "_info"]
            .iter()
            .filter_map(|s| name.strip_suffix(s))
            .find(|f| types.contains_key(*f))
            .unwrap_or(name);
        assert!(
            types.contains_key(family) || types.contains_key(name),
            "sample {name} has no # TYPE"
        );
        samples.insert(
            format!("{name}{}", c.get(2).map_or("", |m| m.as_str())),
            value,
        );
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_serve_peerpacks_and_libp2ps_families_as_prometheus_text() {
    let net = TestNet::new(2).await;
    net.connect(1, 0).await;
    common::publish_alone(net.inner(0), example("axum-service"))
        .await
        .unwrap();
    wait_searchable(net.inner(1), "axum", "axum-service").await;
    // 1 fetches the archive from 0.
    net.inner(1).pin("axum-service").await.unwrap();

    // A gossip message accepted on 1, a search on 1, a DHT put on 0: their counters moved.
    let samples = wait_for("the counters to move", TIMEOUT, || async {
        let (status, ctype, text) = get(&net, 1, "/metrics", "127.0.0.1").await;
        assert_eq!(status, StatusCode::OK);
        assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
        let s = parse(&text);
        // Gauges follow the network loop's 100 ms tick.
        (s.keys().any(|k| {
            k.starts_with("peerpack_gossip_messages_total{") && k.contains("result=\"accept\"")
        }) && s.get("peerpack_peers_connected") == Some(&1.0))
        .then_some((s, text))
    })
    .await;
    let (samples, text) = samples;
    let families: HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for f in [
        "peerpack_gossip_messages_total",
        "peerpack_search_duration_seconds",
        "peerpack_peers_connected",
        "peerpack_dht_routing_table",
        "peerpack_connections_total",
        "peerpack_payload_bytes_total",
        "peerpack_catalogue_packages",
        "peerpack_store_lock_wait_seconds",
        "peerpack_net_commands_depth",
        "peerpack_dials_refused_total",
    ] {
        assert!(families.contains(f), "no family {f} in:\n{text}");
    }
    assert!(
        families.iter().any(|f| f.starts_with("libp2p_")),
        "no libp2p family in:\n{text}"
    );
    assert!(
        samples["peerpack_search_duration_seconds_count"] >= 1.0,
        "{text}"
    );
    assert_eq!(
        samples.get("peerpack_downloads_total{result=\"ok\"}"),
        Some(&1.0),
        "{text}"
    );
    assert!(
        samples["peerpack_download_throughput_bytes_per_second_count"] >= 1.0,
        "{text}"
    );
    assert_eq!(samples["peerpack_peers_connected"], 1.0, "{text}");
    assert!(
        samples.iter().any(|(k, v)| k
            .starts_with("peerpack_payload_bytes_total{direction=\"received\",protocol=\"blob\"")
            && *v > 1000.0),
        "archive bytes counted: {text}"
    );
    let (_, _, zero) = get(&net, 0, "/metrics", "127.0.0.1").await;
    let zero = parse(&zero);
    assert!(
        zero.iter()
            .any(|(k, v)| k.starts_with("peerpack_dht_queries_total{kind=\"put\"") && *v >= 1.0),
        "the publisher counted its DHT puts: {zero:?}"
    );
    assert!(
        zero.get("peerpack_publish_duration_seconds_count{result=\"ok\"}") == Some(&1.0),
        "{zero:?}"
    );

    // Read-only, so no token; but the Host rule holds.
    let (status, _, _) = get(&net, 1, "/metrics", "evil.example").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    net.shutdown().await;
}
