//! The HTTP API, exercised in process with `router().oneshot(request)`.

#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestNet, example};
use peerpack_core::ContentId;
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

/// A package with a private key in it is refused, naming the file, unless the caller says
/// the file is meant to ship; nothing is stored on refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_holding_a_private_key_is_refused_unless_allowed() {
    let net = TestNet::new(1).await;
    let tmp = tempfile::tempdir().unwrap();
    let src = example("github-actions-ci");
    for f in ["peerpack.toml", "README.md"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    std::fs::create_dir(tmp.path().join("deploy")).unwrap();
    std::fs::write(
        tmp.path().join("deploy/key.txt"),
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n",
    )
    .unwrap();
    std::fs::write(tmp.path().join("id_ed25519"), "x").unwrap();
    let (s, body) = call(
        &net,
        "POST",
        "/v1/publish",
        Some(serde_json::json!({"path": tmp.path()})),
    )
    .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    let msg = body["error"]["message"].as_str().unwrap();
    for needle in [
        "deploy/key.txt",
        "PRIVATE KEY",
        "id_ed25519",
        "--allow-secrets",
        ".peerpackignore",
    ] {
        assert!(msg.contains(needle), "{needle:?} missing: {msg}");
    }
    let (s, _) = call(&net, "GET", "/v1/packages/github-actions-ci", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nothing was stored");

    // Left out with .peerpackignore: published without the flag.
    std::fs::write(tmp.path().join(".peerpackignore"), "deploy/\nid_ed25519\n").unwrap();
    let (s, body) = call(
        &net,
        "POST",
        "/v1/publish",
        Some(serde_json::json!({"path": tmp.path()})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // Or shipped on purpose, as a new version.
    std::fs::remove_file(tmp.path().join(".peerpackignore")).unwrap();
    let manifest = std::fs::read_to_string(tmp.path().join("peerpack.toml")).unwrap();
    let bumped = manifest.replacen("version = \"", "version = \"9", 1);
    assert_ne!(bumped, manifest);
    std::fs::write(tmp.path().join("peerpack.toml"), bumped).unwrap();
    let (s, body) = call(
        &net,
        "POST",
        "/v1/publish",
        Some(serde_json::json!({"path": tmp.path(), "allow_secrets": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
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

/// Every route the router serves, with its methods. The OpenAPI document must list exactly
/// these, and the router must answer them (checked below).
const ROUTES: &[(&str, &[&str])] = &[
    ("/v1/openapi.json", &["get"]),
    ("/v1/status", &["get"]),
    ("/metrics", &["get"]),
    ("/v1/search", &["get"]),
    ("/v1/packages/{name}", &["get"]),
    ("/v1/dht/names/{name}", &["get"]),
    ("/v1/dht/providers/{content_id}", &["get"]),
    ("/v1/publish", &["post"]),
    ("/v1/peers", &["get"]),
    ("/v1/peers/{peer_id}", &["get"]),
    ("/v1/bootstrap", &["post"]),
    ("/v1/install", &["post"]),
    ("/v1/install/{id}", &["delete"]),
    ("/v1/remove", &["post"]),
    ("/v1/yank", &["post"]),
    ("/v1/deprecate", &["post"]),
    ("/v1/verify", &["post"]),
    ("/v1/gc", &["post"]),
    ("/v1/pins", &["get", "post"]),
    ("/v1/pins/{spec}", &["delete"]),
    ("/v1/mirrors", &["get", "post"]),
    ("/v1/mirrors/{rule}", &["delete"]),
    ("/v1/blocks", &["get"]),
    ("/v1/blocks/{peer_id}", &["delete"]),
    ("/v1/trust", &["get", "post"]),
    ("/v1/trust/{name}", &["delete"]),
    ("/v1/curate", &["get", "post"]),
    ("/v1/ui/link", &["post"]),
];

const HTTP_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The methods the router allows on `path`, from the `Allow` header of a 405 to a method no
/// route uses (`None` when the path is not routed at all).
async fn allowed_methods(net: &TestNet, path: &str) -> Option<Vec<String>> {
    let router = peerpack_node::api::router(net.inner(0).clone());
    let req = Request::builder()
        .method("PATCH")
        .uri(path)
        .header(
            "authorization",
            format!("Bearer {}", net.inner(0).api_token()),
        )
        .body(Body::empty())
        .unwrap();
    let resp = router.oneshot(req).await.unwrap();
    if resp.status() == StatusCode::NOT_FOUND {
        return None;
    }
    assert_eq!(
        resp.status(),
        StatusCode::METHOD_NOT_ALLOWED,
        "PATCH {path}"
    );
    let allow = resp.headers()["allow"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    let mut methods: Vec<String> = allow
        .split(',')
        .map(|m| m.trim().to_owned())
        // axum answers HEAD wherever it answers GET.
        .filter(|m| m != "head")
        .collect();
    methods.sort();
    Some(methods)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_with_its_methods() {
    let net = TestNet::new(1).await;
    // A GET: no token needed.
    let router = peerpack_node::api::router(net.inner(0).clone());
    let resp = router
        .oneshot(
            Request::get("/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&bytes).expect("the document is JSON");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    // It is also a valid utoipa document, so it parses back into the OpenAPI model.
    serde_json::from_slice::<utoipa::openapi::OpenApi>(&bytes).expect("an OpenAPI document");

    let paths = doc["paths"].as_object().expect("paths");
    let mut documented: Vec<&str> = paths.keys().map(String::as_str).collect();
    let mut listed: Vec<&str> = ROUTES.iter().map(|(p, _)| *p).collect();
    documented.sort_unstable();
    listed.sort_unstable();
    assert_eq!(documented, listed, "documented paths vs. the routes");

    for (path, methods) in ROUTES {
        let item = paths[*path].as_object().unwrap();
        let mut in_doc: Vec<&str> = item
            .keys()
            .map(String::as_str)
            .filter(|k| HTTP_METHODS.contains(k))
            .collect();
        in_doc.sort_unstable();
        let mut expected = methods.to_vec();
        expected.sort_unstable();
        assert_eq!(in_doc, expected, "methods of {path} in the document");

        // The router serves the path with exactly these methods.
        let concrete = path.replace('{', "x").replace('}', "");
        let served = allowed_methods(&net, &concrete)
            .await
            .unwrap_or_else(|| panic!("the router does not serve {path}"));
        assert_eq!(served, expected, "methods the router allows on {path}");

        for method in *methods {
            let op = &item[*method];
            assert!(op["operationId"].is_string(), "{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("200"), "{method} {path}: no 200");
            assert!(responses.contains_key("403"), "{method} {path}: no 403");
            // Every call that changes something needs the token, and says so.
            let secured = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("api_token").is_some()));
            if *method == "get" {
                assert!(!secured, "{method} {path} needs no token");
            } else {
                assert!(secured, "{method} {path}: no security requirement");
                assert!(responses.contains_key("401"), "{method} {path}: no 401");
                assert!(responses.contains_key("400"), "{method} {path}: no 400");
            }
            // Errors are documented in the one error shape.
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ApiError",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["api_token"]["scheme"],
        "bearer"
    );
    let error = &doc["components"]["schemas"]["ErrorDetail"]["properties"];
    assert!(error["code"].is_object() && error["message"].is_object());
    // The range the document gives for `limit` is the one the node enforces.
    let limit = doc["paths"]["/v1/search"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(
        limit["schema"]["maximum"],
        peerpack_store::search::MAX_LIMIT
    );

    // An unknown path is a 404 (the fallback), not a 405: the 405s above did find routes.
    assert!(allowed_methods(&net, "/v1/no-such-route").await.is_none());
    net.shutdown().await;
}

/// The patterns the document gives for names, keys and peer ids accept what the node accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_patterns_agree_with_the_parsers() {
    let doc: serde_json::Value =
        serde_json::to_value(<peerpack_node::api::ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
    let pattern = |v: &serde_json::Value| {
        regex::Regex::new(v.as_str().unwrap_or_else(|| panic!("no pattern: {v}"))).unwrap()
    };
    let path_param = |path: &str, method: &str| {
        pattern(&doc["paths"][path][method]["parameters"][0]["schema"]["pattern"])
    };
    let schemas = &doc["components"]["schemas"];
    let names = [
        path_param("/v1/packages/{name}", "get"),
        path_param("/v1/dht/names/{name}", "get"),
        path_param("/v1/trust/{name}", "delete"),
        pattern(&schemas["TrustBody"]["properties"]["name"]["pattern"]),
        pattern(&schemas["CurateEntry"]["properties"]["name"]["pattern"]),
    ];
    let long = "a".repeat(64);
    let too_long = "a".repeat(65);
    for s in [
        "a",
        "0",
        "rust-cli",
        "a-",
        long.as_str(),
        "",
        "-a",
        "A",
        "a_b",
        "a b",
        "é",
        too_long.as_str(),
        "a\n",
    ] {
        let valid = peerpack_core::PackageName::new(s).is_ok();
        for re in &names {
            assert_eq!(re.is_match(s), valid, "name {s:?} against {re}");
        }
    }
    let keys = [
        pattern(&schemas["TrustBody"]["properties"]["owner"]["pattern"]),
        pattern(&schemas["CurateEntry"]["properties"]["owner"]["pattern"]),
    ];
    let key = peerpack_core::PublisherKey::generate()
        .unwrap()
        .public()
        .to_string();
    for re in &keys {
        assert!(re.is_match(&key), "{key} against {re}");
        assert!(re.is_match(&key.to_ascii_uppercase().replace("ED25519", "ed25519")));
        for bad in [
            "",
            "ed25519:",
            &key[..key.len() - 1],
            &format!("{key}0"),
            "rsa:00",
        ] {
            assert!(!re.is_match(bad), "{bad:?} against {re}");
            assert!(bad.parse::<peerpack_core::PublicKey>().is_err());
        }
    }
    let content = path_param("/v1/dht/providers/{content_id}", "get");
    let id = ContentId::of(b"x").to_string();
    assert!(content.is_match(&id), "{id} against {content}");
    for bad in [
        "",
        "blake3:",
        &id[..id.len() - 1],
        &format!("{id}0"),
        &id.to_ascii_uppercase(),
        &id.replace("blake3:", "BLAKE3:"),
        &id.replace("blake3:", "sha256:"),
    ] {
        assert!(!content.is_match(bad), "{bad:?} against {content}");
        assert!(bad.parse::<ContentId>().is_err(), "{bad:?}");
    }
    let peers = [
        path_param("/v1/peers/{peer_id}", "get"),
        path_param("/v1/blocks/{peer_id}", "delete"),
    ];
    let peer = peerpack_net::p2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id()
        .to_string();
    for re in &peers {
        assert!(re.is_match(&peer), "{peer} against {re}");
        for bad in [
            "",
            "not-a-peer",
            &peer[..peer.len() - 1],
            &format!("{peer}1"),
        ] {
            assert!(!re.is_match(bad), "{bad:?} against {re}");
        }
    }
}

/// Bodies must be JSON objects: serde reads a struct from an array too, so `[true]` was a
/// dry-run gc and `["/dir"]` a publish (found by schemathesis: a schema-violating body
/// accepted). `null` is a gc with no options, as the document says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_are_objects() {
    let net = TestNet::new(1).await;
    for (uri, body) in [
        ("/v1/gc", serde_json::json!([true])),
        ("/v1/gc", serde_json::json!([])),
        ("/v1/publish", serde_json::json!(["/tmp"])),
        ("/v1/pins", serde_json::json!(["rust-cli"])),
        ("/v1/gc", serde_json::json!("dry_run")),
        ("/v1/gc", serde_json::json!({"dry_run": "yes"})),
        ("/v1/gc", serde_json::json!({"dry_run": 1e300})),
    ] {
        let (s, answer) = call(&net, "POST", uri, Some(body.clone())).await;
        assert_error(s, &answer, StatusCode::BAD_REQUEST, "bad_request");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("expected "),
            "{uri} {body}: {answer}"
        );
    }
    for body in [
        None,
        Some(serde_json::Value::Null),
        Some(serde_json::json!({})),
    ] {
        let (s, report) = call(&net, "POST", "/v1/gc", body).await;
        assert_eq!(s, StatusCode::OK, "{report}");
        assert_eq!(report["dry_run"], false);
    }
    let (s, report) = call(
        &net,
        "POST",
        "/v1/gc",
        Some(serde_json::json!({"dry_run": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["dry_run"], true);
    net.shutdown().await;
}

/// A query string or path segment that does not parse is a 400 in the API's error shape, not
/// axum's plain-text rejection (which the document's error schema does not describe).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_queries_and_paths_answer_in_the_error_shape() {
    let net = TestNet::new(1).await;
    for uri in [
        "/v1/search?limit=-1",
        "/v1/search?limit=99999999999999999999999",
        "/v1/search?limit=1e3",
        "/v1/search?min_reputation=high",
        "/v1/peers?min_reputation=%FF",
        "/v1/packages/%FF",
        "/v1/peers/%C3%28",
    ] {
        let (s, body) = call(&net, "GET", uri, None).await;
        assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    }
    for uri in ["/v1/pins/%FF", "/v1/trust/%FF", "/v1/blocks/%FF"] {
        let (s, body) = call(&net, "DELETE", uri, None).await;
        assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    }
    let (s, body) = call(&net, "POST", "/v1/install?progress=%FF", None).await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    net.shutdown().await;
}
