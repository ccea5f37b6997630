//! The HTTP API, exercised in process with `router().oneshot(request)`.

#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestNet, example};
use tower::ServiceExt;

async fn call(
    net: &TestNet,
    method: &str,
    uri: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let router = peerpack_node::api::router(net.inner(0).clone());
    let mut req = Request::builder().method(method).uri(uri).header(
        "authorization",
        format!("Bearer {}", net.inner(0).api_token()),
    );
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let resp = router.oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

fn assert_error(status: StatusCode, body: &serde_json::Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_answers_json_and_errors_in_one_shape() {
    let net = TestNet::new(1).await;
    let (s, body) = call(&net, "GET", "/v1/status", None).await;
    assert_eq!(s, StatusCode::OK);
    for key in [
        "peer_id",
        "connected_peers",
        "catalogue_size",
        "routing_table_size",
    ] {
        assert!(!body[key].is_null(), "status lacks {key}: {body}");
    }

    let (s, body) = call(&net, "GET", "/v1/packages/Not_A_Name", None).await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (s, body) = call(&net, "GET", "/v1/nothing-here", None).await;
    assert_error(s, &body, StatusCode::NOT_FOUND, "not_found");
    let (s, body) = call(
        &net,
        "POST",
        "/v1/publish",
        Some(serde_json::json!({"path": "relative/dir"})),
    )
    .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("absolute")
    );
    let (s, body) = call(
        &net,
        "POST",
        "/v1/publish",
        Some(serde_json::json!({"wrong": 1})),
    )
    .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (s, body) = call(&net, "POST", "/v1/bootstrap", Some(serde_json::json!({"addrs": ["/ip4/10.0.0.1/tcp/1/p2p/12D3KooWRmMv1pAAvaGLy4Sayd43NCzid6ErcRLSD6T2owYouyuN"]}))).await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (s, body) = call(&net, "GET", "/v1/peers/not-a-peer", None).await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");

    let dir = example("dockerfile-multistage");
    let (s, body) = call(
        &net,
        "POST",
        "/v1/publish",
        Some(serde_json::json!({"path": dir})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["republished"], false);
    // Publishing the same content again re-announces it.
    let (_, again) = call(
        &net,
        "POST",
        "/v1/publish",
        Some(serde_json::json!({"path": dir})),
    )
    .await;
    assert_eq!(again["republished"], true);
    assert_eq!(again["content_id"], body["content_id"]);

    let (s, hits) = call(
        &net,
        "GET",
        "/v1/search?q=docker&tags=compose&limit=5",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(hits[0]["name"], "dockerfile-multistage");
    let (s, info) = call(&net, "GET", "/v1/packages/dockerfile-multistage", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(info["versions"][0]["version"], "2.0.3");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_package_cannot_reuse_a_published_version() {
    let net = TestNet::new(1).await;
    let tmp = tempfile::tempdir().unwrap();
    let src = example("github-actions-ci");
    for f in ["peerpack.toml", "README.md"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    let (s, _) = call(
        &net,
        "POST",
        "/v1/publish",
        Some(serde_json::json!({"path": tmp.path()})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    std::fs::write(tmp.path().join("README.md"), "changed\n").unwrap();
    let (s, body) = call(
        &net,
        "POST",
        "/v1/publish",
        Some(serde_json::json!({"path": tmp.path()})),
    )
    .await;
    assert_error(s, &body, StatusCode::CONFLICT, "conflict");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bump the version"),
        "{body}"
    );
    net.shutdown().await;
}

/// One HTTP/1.1 request over a real socket, with exactly the headers given; the status and
/// the JSON body.
async fn raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b.trim()).ok())
        .unwrap_or(serde_json::Value::Null);
    (status, json)
}

// A web page in the user's browser tries the API two ways: DNS rebinding (its own name
// resolving to 127.0.0.1, so the Host is the page's name) and a cross-origin POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_pages_cannot_drive_the_api() {
    let net = TestNet::new(1).await;
    let addr = net.node(0).api_addr();
    let own = addr.to_string();
    let key = net.inner(0).publisher().to_string();
    let trust = serde_json::json!({ "name": "rust-cli", "owner": key });

    let (status, body) = raw(addr, "GET", "/v1/status", &[("Host", &own)], None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = raw(addr, "GET", "/v1/status", &[("Host", "localhost")], None).await;
    assert_eq!(status, 200, "{body}");

    // DNS rebinding: the page is same-origin with itself, but its Host is not loopback.
    let rebound = format!("evil.example:{}", addr.port());
    let origin = format!("http://{rebound}");
    let (status, body) = raw(addr, "GET", "/v1/status", &[("Host", &rebound)], None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    let (status, _) = raw(
        addr,
        "POST",
        "/v1/trust",
        &[("Host", &rebound), ("Origin", &origin)],
        Some(trust.clone()),
    )
    .await;
    assert_eq!(status, 403);

    // A cross-origin POST from a page elsewhere, addressed correctly.
    let (status, body) = raw(
        addr,
        "POST",
        "/v1/trust",
        &[("Host", &own), ("Origin", "http://evil.example")],
        Some(trust.clone()),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cross-origin"),
        "{body}"
    );
    let (status, _) = raw(
        addr,
        "POST",
        "/v1/trust",
        &[("Host", &own), ("Origin", "null")],
        Some(trust.clone()),
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        net.inner(0).trusted().await.unwrap().is_empty(),
        "a page pinned an owner"
    );

    // Without the token, or with a wrong one, nothing changes; reads need none.
    let origin_own = format!("http://{own}");
    let token = net.inner(0).api_token().to_owned();
    let bearer = format!("Bearer {token}");
    let (status, body) = raw(
        addr,
        "POST",
        "/v1/trust",
        &[("Host", &own)],
        Some(trust.clone()),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    let wrong = format!("Bearer {}", "0".repeat(64));
    let (status, _) = raw(
        addr,
        "POST",
        "/v1/trust",
        &[("Host", &own), ("Authorization", &wrong)],
        Some(trust.clone()),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = raw(addr, "DELETE", "/v1/pins/rust-cli", &[("Host", &own)], None).await;
    assert_eq!(status, 401);
    assert!(net.inner(0).trusted().await.unwrap().is_empty());
    // The token lives in the data directory, readable by its owner only.
    let file = net.node(0).data_dir().api_token_file();
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    // The API's own origin with the token, and the CLI's way (no Origin, the token), are served.
    let (status, body) = raw(
        addr,
        "POST",
        "/v1/trust",
        &[
            ("Host", &own),
            ("Origin", &origin_own),
            ("Authorization", &bearer),
        ],
        Some(trust.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(net.inner(0).trusted().await.unwrap().len(), 1);
    let cookie = format!("peerpack_token={token}");
    let (status, body) = raw(
        addr,
        "DELETE",
        "/v1/trust/rust-cli",
        &[("Host", &own), ("Cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Out-of-range parameters are refused, not clamped.
    for q in [
        "limit=0",
        "limit=100000",
        "min_reputation=NaN",
        "min_reputation=2",
    ] {
        let (status, body) = raw(
            addr,
            "GET",
            &format!("/v1/search?{q}"),
            &[("Host", &own)],
            None,
        )
        .await;
        assert_eq!(status, 400, "{q}: {body}");
    }
    let (status, _) = raw(
        addr,
        "GET",
        "/v1/peers?min_reputation=-1",
        &[("Host", &own)],
        None,
    )
    .await;
    assert_eq!(status, 400);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_api_address_needs_an_explicit_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = peerpack_node::Config::loopback(dir.path());
    // Refused before anything is bound.
    config.api = "0.0.0.0:0".parse().unwrap();
    let err = match peerpack_node::Node::start(config).await {
        Ok(_) => panic!("a node started with its API on 0.0.0.0"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("0.0.0.0") && err.contains("--api-public"),
        "{err}"
    );
}
