//! The web page (docs/WEB.md), each page rendered by a real node's router: its structure, and
//! the escaping of hostile values that arrive from the network.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use axum::body::Body;
use axum::http::{HeaderMap, Request};
use common::{TIMEOUT, TestNet, bare_peer, example, wait_for, wait_searchable};
use peerpack_core::record::RecordFields;
use peerpack_core::{ContentId, Manifest, PackageRecord, PublisherKey};
use peerpack_net::p2p::identity;
use tower::ServiceExt;

/// `GET path` on node `i` with `Host: host` and `headers`: (status, headers, body).
async fn get_with(
    net: &TestNet,
    i: usize,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap, String) {
    let router = peerpack_node::api::router(net.inner(i).clone());
    let mut req = Request::get(path).header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Body::empty()).unwrap();
    let resp = router.oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
        .await
        .unwrap();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn get_as(net: &TestNet, i: usize, path: &str, host: &str) -> (u16, HeaderMap, String) {
    get_with(net, i, path, host, &[]).await
}

async fn get(net: &TestNet, i: usize, path: &str) -> (u16, HeaderMap, String) {
    get_as(net, i, path, "127.0.0.1:7777").await
}

/// A page: 200, HTML, the page headers, one document.
fn assert_page(path: &str, (status, headers, body): &(u16, HeaderMap, String)) {
    assert_eq!(*status, 200, "{path}: {body}");
    assert_eq!(
        headers["content-type"], "text/html; charset=utf-8",
        "{path}"
    );
    // The policy, directive by directive: no script from anywhere, nothing inline, no
    // framing, forms only back here.
    let csp = headers["content-security-policy"].to_str().unwrap();
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    for d in [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(directives.contains(&d), "{path}: {csp} lacks {d}");
    }
    for loose in ["unsafe-inline", "unsafe-eval", "data:", "*"] {
        assert!(!csp.contains(loose), "{path}: {csp} allows {loose}");
    }
    assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
    assert_eq!(headers["x-frame-options"], "DENY", "{path}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
    assert_eq!(headers["cache-control"], "no-store", "{path}");
    assert_eq!(
        headers["cross-origin-resource-policy"], "same-origin",
        "{path}"
    );
    assert!(body.starts_with("<!DOCTYPE html>"), "{path}");
    assert_eq!(body.matches("<html").count(), 1, "{path}");
    assert!(body.contains("<main id=\"main\">"), "{path}");
    assert!(body.contains("href=\"/assets/style.css\""), "{path}");
}

/// Nothing hostile made it into the markup as markup.
fn assert_inert(path: &str, body: &str) {
    // Escaped text may say `onerror=`; only a raw tag or a raw quote starts markup. The
    // page's own script file is the one script tag.
    assert_eq!(body.matches("<script").count(), 1, "{path}");
    let body = &body.replacen(SCRIPT_TAG, "", 1);
    let lower = body.to_ascii_lowercase();
    for raw in [
        "<script",
        "<img",
        "<svg",
        "<iframe",
        "<meta http",
        "<b>",
        "onmouseover=\"",
        "onfocus=\"",
        "javascript:",
        "\u{202e}",
    ] {
        assert!(
            !lower.contains(raw),
            "{path} holds {raw:?} unescaped:\n{body}"
        );
    }
    // Every hostile value, raw, is nowhere.
    for value in HOSTILE_VALUES {
        assert!(!body.contains(value), "{path} holds {value:?} raw");
    }
}

/// Every tag of `body` (a literal `<`: text has `&lt;`) is one that can neither run, load,
/// frame nor post, and carries no handler, style, or link other than `http(s)` or this node's
/// own pages.
fn assert_tags_inert(body: &str) {
    assert_eq!(body.matches("<script").count(), 1);
    let body = &body.replacen(SCRIPT_TAG, "", 1);
    // The page's own forms (search, and the operator's, hidden until the script shows them)
    // post only to this node's page paths; the README holds no form, button or input.
    let own_form = |lower: &str| {
        [
            "action=\"/\"",
            "action=\"/ui/install\"",
            "action=\"/ui/pin\"",
            "action=\"/ui/logout\"",
        ]
        .iter()
        .any(|a| lower.contains(a))
    };
    let readme = body.find("<div class=\"readme\"").unwrap_or(body.len())
        ..body
            .find("<section aria-labelledby=\"files-h\"")
            .unwrap_or(body.len());
    let outside_readme = |tag: &str| {
        let at = tag.as_ptr() as usize - body.as_ptr() as usize;
        !readme.contains(&at)
    };
    for tag in body.split('<').skip(1).map(|t| &t[..t.find('>').unwrap()]) {
        let lower = tag.to_ascii_lowercase();
        let name = lower
            .trim_start_matches('/')
            .split([' ', '/'])
            .next()
            .unwrap();
        assert!(
            ![
                "script", "img", "svg", "iframe", "form", "button", "object", "embed", "base",
                "style", "input"
            ]
            .contains(&name)
                || (name == "form"
                    && (own_form(&lower) || lower.starts_with('/'))
                    && outside_readme(tag))
                || (matches!(name, "button" | "input") && outside_readme(tag)),
            "<{tag}>"
        );
        assert!(
            !lower.contains("javascript:") && !lower.contains("data:"),
            "<{tag}>"
        );
        assert!(!lower.contains("style="), "<{tag}>");
        let handler = lower
            .split_whitespace()
            .any(|attr| attr.starts_with("on") && attr.contains('='));
        assert!(!handler, "<{tag}>");
        if let Some(at) = lower.find("href=\"") {
            let url = &lower[at + 6..];
            assert!(
                url.starts_with("https://")
                    || url.starts_with("http://")
                    || url.starts_with('#')
                    || (url.starts_with('/') && !url.starts_with("//")),
                "<{tag}>"
            );
            assert!(
                !url.starts_with("/v1") && !url.starts_with("../"),
                "<{tag}>"
            );
        }
    }
}

/// The page's one script tag: its own file, no inline code.
const SCRIPT_TAG: &str = r#"<script src="/assets/app.js" defer></script>"#;

/// The hostile values of [`HOSTILE`], as they are once parsed.
const HOSTILE_VALUES: &[&str] = &[
    "<script>alert('d')</script>",
    "\" onmouseover=\"alert(1)\"",
    "<img src=x onerror=alert(2)>",
    "\"><script>alert(3)</script>",
    "</td></tr></table><img src=x onerror=alert(4)>",
    "https://example.org/\"><script>alert(5)</script>",
    "http://x/'><img/src/onerror=alert(6)>",
    "<svg onload=alert(8)>",
    "<iframe src=//evil.example>",
    "<meta http-equiv=refresh content=0;url=//evil.example>",
];

/// A hostile package: every free-text field tries to break out of the markup.
const HOSTILE: &str = r#"[package]
name = "evil-template"
version = "1.0.0"
description = "<script>alert('d')</script> \" onmouseover=\"alert(1)\" <b>bold</b> <svg onload=alert(8)> exe.\u202Efdp"
license = "<img src=x onerror=alert(2)>"
authors = ["\"><script>alert(3)</script>", "</td></tr></table><img src=x onerror=alert(4)>", "<iframe src=//evil.example>", "<meta http-equiv=refresh content=0;url=//evil.example>"]
homepage = "https://example.org/\"><script>alert(5)</script>"
repository = "http://x/'><img/src/onerror=alert(6)>"
categories = ["web"]
tags = ["xss", "demo"]

[dependencies]
rust-cli = "^1"
"#;

fn hostile_record(text: &str, key: &PublisherKey) -> PackageRecord {
    PackageRecord::sign(
        RecordFields {
            manifest: Manifest::parse(text, Path::new("peerpack.toml")).unwrap(),
            content_id: ContentId::of(text.as_bytes()),
            archive_size: 1234,
            seq: 1,
            published_at: 1_795_467_000,
        },
        key,
    )
    .unwrap()
}

//   A ── B ── M     A publishes the examples; M, a bare peer, announces a hostile package.
//                   B serves the pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_and_escapes_what_the_network_sends() {
    let net = TestNet::new(2).await;
    net.connect(0, 1).await;
    for pack in ["github-actions-ci", "rust-cli"] {
        peerpack_node::publish::publish(net.inner(0), example(pack))
            .await
            .unwrap();
    }
    let b = 1;
    wait_searchable(net.inner(b), "rust", "rust-cli").await;
    let m = bare_peer(identity::Keypair::generate_ed25519(), &net, b).await;
    let m_key = PublisherKey::from_secret_bytes(&[42; 32]);
    let evil = hostile_record(HOSTILE, &m_key);
    m.handle.announce(evil.encode()).await.unwrap();
    // A description at the manifest's limit, all of it markup.
    let huge_text = format!(
        "[package]\nname = \"huge-template\"\nversion = \"1.0.0\"\ndescription = \"{}\"\nlicense = \"MIT\"\nauthors = [\"m\"]\ntags = [\"xss\"]\n",
        "<script>x</script>"
            .repeat(peerpack_core::limits::MAX_DESCRIPTION_LEN / "<script>x</script>".len())
    );
    let huge = hostile_record(&huge_text, &m_key);
    m.handle.announce(huge.encode()).await.unwrap();
    wait_searchable(net.inner(b), "alert", "evil-template").await;
    wait_for("B to take the huge record", TIMEOUT, || async {
        net.inner(b).info("huge-template").await.ok()
    })
    .await;

    // The front page: everything, then a search, then a tag filter.
    let front = get(&net, b, "/").await;
    assert_page("/", &front);
    assert_inert("/", &front.2);
    assert!(
        front.2.contains("href=\"/packages/rust-cli\""),
        "{}",
        front.2
    );
    assert!(front.2.contains("<label for=\"q\">"));
    let found = get(&net, b, "/?q=alert").await;
    assert_page("/?q=alert", &found);
    assert_inert("/?q=alert", &found.2);
    for escaped in [
        "&lt;script&gt;alert('d')&lt;/script&gt;",
        "&quot; onmouseover=&quot;alert(1)&quot;",
        "&lt;svg onload=alert(8)&gt;",
        // The right-to-left override is shown as a replacement character.
        "exe.\u{FFFD}fdp",
    ] {
        assert!(found.2.contains(escaped), "{escaped} not in {}", found.2);
    }
    let tagged = get(&net, b, "/?tag=xss").await;
    assert_page("/?tag=xss", &tagged);
    assert_inert("/?tag=xss", &tagged.2);
    assert!(tagged.2.contains("evil-template") && tagged.2.contains("huge-template"));
    assert!(!tagged.2.contains("href=\"/packages/rust-cli\""));
    // Tags among the results, with counts, each a filter link.
    assert!(
        tagged.2.contains("href=\"/?q=&amp;tag=demo\""),
        "{}",
        tagged.2
    );
    // The search words come back escaped in the search box.
    let q = get(&net, b, "/?q=%22%3E%3Cscript%3Ealert(7)%3C/script%3E").await;
    assert_page("/?q=hostile", &q);
    assert_inert("/?q=hostile", &q.2);
    assert!(
        q.2.contains("value=\"&quot;&gt;&lt;script&gt;alert(7)&lt;/script&gt;\""),
        "{}",
        q.2
    );

    // A package page: versions, manifest fields, dependency links, owner and trust state.
    let page = get(&net, b, "/packages/rust-cli").await;
    assert_page("/packages/rust-cli", &page);
    let owner = net.inner(0).publisher().to_string();
    assert!(
        page.2.contains(&format!("href=\"/publishers/{owner}\"")),
        "{}",
        page.2
    );
    assert!(
        page.2.contains("href=\"/packages/github-actions-ci\""),
        "{}",
        page.2
    );
    assert!(page.2.contains("peerpack install rust-cli"));
    assert!(
        page.2.contains("data-state=\"sole claimant\""),
        "{}",
        page.2
    );
    assert!(page.2.contains("<table class=\"versions\">"));
    // B does not hold the archive: no README or files, and says how to get them.
    assert!(
        page.2
            .contains("This node does not hold the archive of 1.2.0"),
        "{}",
        page.2
    );
    // A published it, so A shows its README (rendered markdown) and its files.
    let at_a = get(&net, 0, "/packages/rust-cli").await;
    assert_page("/packages/rust-cli on A", &at_a);
    for shown in [
        "<div class=\"readme\" dir=\"auto\"><h1>rust-cli</h1>",
        "<code>clap</code> derive arguments",
        "<table><thead><tr><th>variable</th>",
        "<code>template/src/</code>",
        "<code>template/src/main.rs</code>",
        "<code>peerpack.toml</code>",
    ] {
        assert!(at_a.2.contains(shown), "{shown} not in {}", at_a.2);
    }
    // Dependents: rust-cli depends on github-actions-ci, on both nodes' pages.
    for node in [0, b] {
        let ci = get(&net, node, "/packages/github-actions-ci").await;
        assert_page("/packages/github-actions-ci", &ci);
        assert!(
            ci.2.contains("<ul class=\"deps dependents\"><li><a href=\"/packages/rust-cli\">rust-cli</a> 1.2.0 <code>^1.0</code>"),
            "{}",
            ci.2
        );
    }
    // The hostile one: escaped everywhere, and its links are not links.
    let evil_page = get(&net, b, "/packages/evil-template").await;
    assert_page("/packages/evil-template", &evil_page);
    assert_inert("/packages/evil-template", &evil_page.2);
    for escaped in [
        "&lt;img src=x onerror=alert(2)&gt;",
        "&quot;&gt;&lt;script&gt;alert(3)&lt;/script&gt;",
        "&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;img src=x onerror=alert(4)&gt;",
        "&lt;iframe src=//evil.example&gt;",
        "href=\"http://x/'&gt;&lt;img/src/onerror=alert(6)&gt;\"",
    ] {
        assert!(
            evil_page.2.contains(escaped),
            "{escaped} not in {}",
            evil_page.2
        );
    }
    assert!(
        evil_page.2.contains(
            "href=\"https://example.org/&quot;&gt;&lt;script&gt;alert(5)&lt;/script&gt;\""
        ),
        "{}",
        evil_page.2
    );
    let huge_page = get(&net, b, "/packages/huge-template").await;
    assert_page("/packages/huge-template", &huge_page);
    assert_inert("/packages/huge-template", &huge_page.2);

    // The publisher page lists what the key owns.
    let publisher = get(&net, b, &format!("/publishers/{}", m_key.public())).await;
    assert_page("/publishers/…", &publisher);
    assert_inert("/publishers/…", &publisher.2);
    assert!(publisher.2.contains("href=\"/packages/evil-template\""));
    assert!(publisher.2.contains("href=\"/packages/huge-template\""));
    assert!(!publisher.2.contains("href=\"/packages/rust-cli\""));

    // The network page: this node's figures and its peers, M among them.
    let network = get(&net, b, "/network").await;
    assert_page("/network", &network);
    assert_inert("/network", &network.2);
    assert!(network.2.contains("<table class=\"peers\">"));
    let a_id = net.node(0).peer_id().to_string();
    assert!(
        network.2.contains(&format!("title=\"{a_id}\"")),
        "{}",
        network.2
    );

    // The stylesheet: CSS, with a dark mode.
    let (status, headers, css) = get(&net, b, "/assets/style.css").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/css; charset=utf-8");
    assert!(css.contains("prefers-color-scheme: dark"));
    let (status, headers, js) = get(&net, b, "/assets/app.js").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    assert!(js.contains("new EventSource(\"/live\")"));
    // It writes text, never markup from a string.
    assert!(!js.contains("innerHTML") && !js.contains("eval("));

    // Errors are pages too, with the API's statuses.
    for (path, status, says) in [
        ("/packages/no-such-template", 404, "no-such-template"),
        ("/packages/Not_A_Name", 400, "Not_A_Name"),
        ("/publishers/ed25519:nothex", 400, "not a publisher key"),
    ] {
        let (s, h, body) = get(&net, b, path).await;
        assert_eq!(s, status, "{path}: {body}");
        assert_eq!(h["content-type"], "text/html; charset=utf-8", "{path}");
        assert!(body.contains(says), "{path}: {body}");
        assert_inert(path, &body);
    }

    // The API's Host rule holds for pages: a rebinding name gets nothing.
    let (s, _, _) = get_as(&net, b, "/", "evil.example:7777").await;
    assert_eq!(s, 403);
    let (s, _, _) = get_as(&net, b, "/packages/rust-cli", "evil.example").await;
    assert_eq!(s, 403);

    // Another site may link to a page (a top-level visit), and nothing more: no `<img>`,
    // `<script>` or `fetch` of a page or of the API, each of which would make this node work
    // for it (a page of an unknown name asks the DHT).
    let host = "127.0.0.1:7777";
    let visit = [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-mode", "navigate"),
    ];
    let (s, _, body) = get_with(&net, b, "/packages/rust-cli", host, &visit).await;
    assert_eq!(s, 200, "{body}");
    for (path, site, mode) in [
        ("/packages/no-such-name-here", "cross-site", "no-cors"),
        ("/", "cross-site", "cors"),
        ("/v1/dht/names/rust-cli", "cross-site", "no-cors"),
        ("/v1/status", "same-site", "cors"),
        ("/v1/status", "cross-site", "navigate"),
        ("/metrics", "cross-site", "navigate"),
    ] {
        let headers = [("sec-fetch-site", site), ("sec-fetch-mode", mode)];
        let (s, _, body) = get_with(&net, b, path, host, &headers).await;
        assert_eq!(s, 403, "{path} {site} {mode}: {body}");
        assert!(body.contains("other sites may only link"), "{body}");
    }
    // The page itself, and the CLI (which sends no fetch metadata), are served.
    let own = [
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-mode", "cors"),
    ];
    let (s, h, _) = get_with(&net, b, "/v1/status", host, &own).await;
    assert_eq!(s, 200);
    assert_eq!(h["cross-origin-resource-policy"], "same-origin");
    let typed = [("sec-fetch-site", "none"), ("sec-fetch-mode", "navigate")];
    let (s, _, _) = get_with(&net, b, "/network", host, &typed).await;
    assert_eq!(s, 200);

    m.handle.shutdown().await.unwrap();
    net.shutdown().await;
}

/// A README that tries everything markdown allows and then some, past the size shown.
fn hostile_readme() -> String {
    let mut md = String::from(
        "# Hostile <script>alert('h1')</script>\n\n\
         [click](javascript:alert(1)) [data](data:text/html,<script>alert(2)</script>) \
         [api](/v1/packages/x) [rel](../../v1/status) [ok](https://example.org/ok)\n\n\
         <script>alert(3)</script>\n\n<img src=x onerror=alert(4)>\n\n\
         <iframe src=\"//evil.example\"></iframe>\n\n\
         <a href=\"javascript:alert(5)\" onclick=\"alert(6)\">raw link</a>\n\n\
         ![tracking pixel](https://evil.example/pixel.png)\n\n\
         <div style=\"position:fixed;inset:0\">overlay</div>\n\n\
         <form action=\"/v1/install\"><button>go</button></form>\n\n\
         [ref]: javascript:alert(7)\n\nsee [ref]\n\n\
         exe.\u{202E}fdp\n\n",
    );
    // Past the 256 KiB shown.
    while md.len() < 300 * 1024 {
        md.push_str("<svg onload=alert(8)> *filler* text to make the README long.\n\n");
    }
    md
}

// One node publishes a pack whose README is hostile markdown; its page renders the README
// sanitised: formatting stays, nothing can run, load, frame, style or post.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readme_from_an_archive_renders_and_cannot_run() {
    let net = TestNet::new(1).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("peerpack.toml"),
        "[package]\nname = \"readme-attack\"\nversion = \"1.0.0\"\ndescription = \"d\"\nlicense = \"MIT\"\nauthors = [\"m\"]\nreadme = \"docs/README.md\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("docs")).unwrap();
    std::fs::write(dir.path().join("docs/README.md"), hostile_readme()).unwrap();
    std::fs::write(
        dir.path().join("README.md"),
        "not the one the manifest names",
    )
    .unwrap();
    std::fs::write(dir.path().join("<img src=x onerror=alert(9)>.txt"), "x").unwrap();
    peerpack_node::publish::publish(net.inner(0), dir.path().to_owned())
        .await
        .unwrap();

    let page = get(&net, 0, "/packages/readme-attack").await;
    assert_page("/packages/readme-attack", &page);
    assert_tags_inert(&page.2);
    let body = &page.2;
    // The README the manifest names, rendered.
    assert!(
        body.contains("<code>docs/README.md</code> from the archive"),
        "{body}"
    );
    assert!(!body.contains("not the one the manifest names"), "{body}");
    assert!(body.contains("<em>filler</em>"), "{body}");
    assert!(
        body.contains(
            "<a href=\"https://example.org/ok\" rel=\"noopener noreferrer nofollow ugc\">ok</a>"
        ),
        "{body}"
    );
    // The image is its alt text; raw HTML is text; links elsewhere than http(s) lose their href.
    assert!(body.contains("tracking pixel"), "{body}");
    assert!(
        body.contains("&lt;iframe src=\"//evil.example\"&gt;")
            || body.contains("&lt;iframe src=&quot;//evil.example&quot;&gt;"),
        "{body}"
    );
    let readme = &body[body.find("<div class=\"readme\"").unwrap()
        ..body.find("<section aria-labelledby=\"files-h\"").unwrap()];
    for gone in ["<form", "<button", "<input"] {
        assert!(!readme.contains(gone), "{gone} in the README");
    }
    for gone in [
        "<iframe",
        "<div style",
        "href=\"data:",
        "href=\"/v1",
        "href=\"../",
        "evil.example/pixel.png\"",
    ] {
        assert!(!body.contains(gone), "{gone} in the page");
    }
    // Cut at 256 KiB, and says so.
    assert!(
        body.contains("Only the first 256.0 KiB are shown."),
        "{body}"
    );
    // The file list, with the hostile file name escaped.
    assert!(body.contains("<code>docs/README.md</code>"), "{body}");
    assert!(
        body.contains("&lt;img src=x onerror=alert(9)&gt;.txt"),
        "{body}"
    );
    net.shutdown().await;
}

/// `method path` on node `i` with a loopback `Host`, `headers` and `body`: (status, headers,
/// body).
async fn send(
    net: &TestNet,
    i: usize,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, HeaderMap, String) {
    let router = peerpack_node::api::router(net.inner(i).clone());
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1:7777");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = router
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
        .await
        .unwrap();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

/// A form post as the page's script sends it: `origin` and `site` as given, with `credential`
/// (a header line `name: value`, or empty for none).
fn form_headers<'a>(
    credential: &'a str,
    origin: &'a str,
    site: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![
        ("content-type", "application/x-www-form-urlencoded"),
        ("origin", origin),
        ("sec-fetch-site", site),
        ("sec-fetch-mode", "cors"),
    ];
    if let Some((k, v)) = credential.split_once(": ") {
        h.push((k, v));
    }
    h
}

//   A ── B     A publishes; B's operator signs in with a one-time link and installs and pins
//              from B's page (the requests its script sends). Without the session, from
//              elsewhere, or with a used link, nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_signed_in_operator_installs_and_pins_from_the_page() {
    let net = TestNet::new(2).await;
    net.connect(0, 1).await;
    for pack in ["github-actions-ci", "rust-cli"] {
        peerpack_node::publish::publish(net.inner(0), example(pack))
            .await
            .unwrap();
    }
    let b = 1;
    wait_searchable(net.inner(b), "rust", "rust-cli").await;
    let project = tempfile::tempdir().unwrap();
    let project_dir = project.path().to_str().unwrap().to_owned();
    let form = format!(
        "package=rust-cli&project={}",
        project_dir.replace('/', "%2F")
    );
    let installed = project.path().join("peerpack_packages/rust-cli");
    let own = "http://127.0.0.1:7777";

    // Anyone's page is read-only: the operator's forms are there for the script to show to a
    // signed-in operator, hidden.
    let page = get(&net, b, "/packages/rust-cli").await;
    assert!(page.2.contains("Read-only."), "{}", page.2);
    assert!(
        page.2.contains("<div id=\"operator\" hidden><form class=\"operator\" method=\"post\" action=\"/ui/install\">"),
        "{}",
        page.2
    );
    // The forms without a session, with a forged one, or with a wrong token: refused, nothing
    // written.
    for credential in [
        "",
        "authorization: Bearer 0000000000000000000000000000000000000000000000000000000000000000",
        "cookie: peerpack_token=wrong",
        "cookie: peerpack_session=0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let (s, _, body) = send(
            &net,
            b,
            "POST",
            "/ui/install",
            &form_headers(credential, own, "same-origin"),
            &form,
        )
        .await;
        assert_eq!(s, 401, "{credential}: {body}");
    }
    assert!(!installed.exists());

    // The operator asks for a link with the token (`peerpack ui`) and follows it.
    let token = net.inner(b).api_token().to_owned();
    let bearer = format!("Bearer {token}");
    let (s, _, link) = send(
        &net,
        b,
        "POST",
        "/v1/ui/link",
        &[("authorization", bearer.as_str())],
        "",
    )
    .await;
    assert_eq!(s, 200, "{link}");
    let link: serde_json::Value = serde_json::from_str(&link).unwrap();
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(link["expires_in_s"], 120);
    let path = &url[url.find("/ui/login").unwrap()..];
    // Without the token there is no link.
    let (s, _, _) = send(&net, b, "POST", "/v1/ui/link", &[], "").await;
    assert_eq!(s, 401);
    // A made-up code opens nothing.
    let (s, _, body) = get(&net, b, "/ui/login?code=00ff").await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("run `peerpack ui`"), "{body}");

    // The link's page hands the session to the page's script; no cookie, which a browser
    // would send to every port of 127.0.0.1.
    // A browser's prefetch of the link does not use it up.
    let (s, _, _) = get_with(
        &net,
        b,
        path,
        "127.0.0.1:7777",
        &[("sec-purpose", "prefetch")],
    )
    .await;
    assert_eq!(s, 204);
    let (s, headers, body) = get(&net, b, path).await;
    assert_eq!(s, 200, "{body}");
    assert!(headers.get("set-cookie").is_none());
    let secret = body
        .split("data-session=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    assert_eq!(secret.len(), 64, "{body}");
    let session = format!("authorization: Bearer {secret}");
    // The link works once.
    let (s, _, _) = get(&net, b, path).await;
    assert_eq!(s, 403);
    assert!(get(&net, b, path).await.2.contains("used already"));

    // The page offers Pin for the latest version.
    assert!(
        page.2.contains("name=\"package\" value=\"rust-cli@1.2.0\""),
        "{}",
        page.2
    );
    // Even with the session, a request another site or origin starts is refused.
    for (origin, site) in [
        ("http://evil.example", "cross-site"),
        ("http://evil.example", "same-origin"),
        ("http://127.0.0.1:9999", "same-site"),
        ("null", "same-origin"),
    ] {
        let (s, _, body) = send(
            &net,
            b,
            "POST",
            "/ui/install",
            &form_headers(&session, origin, site),
            &form,
        )
        .await;
        assert_eq!(s, 403, "{origin} {site}: {body}");
    }
    assert!(!installed.exists());
    // A relative project is refused with a message that says why.
    let (s, _, body) = send(
        &net,
        b,
        "POST",
        "/ui/install",
        &form_headers(&session, own, "same-origin"),
        "package=rust-cli&project=relative%2Fdir",
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("absolute path"), "{body}");

    // The operator installs: the pack and its dependency, and the project's lock file.
    let (s, _, body) = send(
        &net,
        b,
        "POST",
        "/ui/install",
        &form_headers(&session, own, "same-origin"),
        &form,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("<h1>Installed</h1>"), "{body}");
    assert!(installed.join("peerpack.toml").is_file());
    assert!(
        project
            .path()
            .join("peerpack_packages/github-actions-ci/peerpack.toml")
            .is_file()
    );
    let lock = std::fs::read_to_string(project.path().join("peerpack.lock")).unwrap();
    assert!(
        lock.contains("rust-cli") && lock.contains("github-actions-ci"),
        "{lock}"
    );
    assert!(lock.contains("peerpack_packages"), "{lock}");

    // And pins the version.
    let (s, _, body) = send(
        &net,
        b,
        "POST",
        "/ui/pin",
        &form_headers(&session, own, "same-origin"),
        "package=rust-cli%401.2.0",
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("<h1>Pinned</h1>"), "{body}");
    let pins = net.inner(b).pins().await.unwrap();
    assert!(
        pins.iter()
            .any(|p| p.name == "rust-cli" && p.version == "1.2.0")
    );

    // The session is for the page's own actions: the API does not take it for the token.
    let (s, _, body) = send(
        &net,
        b,
        "POST",
        "/v1/pins",
        &[
            ("authorization", &session["authorization: ".len()..]),
            ("origin", own),
            ("content-type", "application/json"),
        ],
        r#"{"package": "github-actions-ci"}"#,
    )
    .await;
    assert_eq!(s, 401, "{body}");

    // Signing out ends the session: the same secret does nothing any more.
    let (s, _, body) = send(
        &net,
        b,
        "POST",
        "/ui/logout",
        &form_headers(&session, own, "same-origin"),
        "",
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("Signed out"), "{body}");
    let (s, _, _) = send(
        &net,
        b,
        "POST",
        "/ui/pin",
        &form_headers(&session, own, "same-origin"),
        "package=github-actions-ci",
    )
    .await;
    assert_eq!(s, 401);
    net.shutdown().await;
}

/// The next `status` event's data from a `/live` stream.
async fn next_status(
    stream: &mut (impl futures::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin),
    buffer: &mut String,
) -> serde_json::Value {
    use futures::StreamExt;
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .filter(|_| event.contains("event: status"))
            {
                return serde_json::from_str(data.trim()).unwrap();
            }
            continue;
        }
        let chunk = tokio::time::timeout(TIMEOUT, stream.next())
            .await
            .expect("a status event in time")
            .expect("the stream goes on")
            .unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

//   A ── B     B's /live stream reports its figures at once, and again when a package A
//              publishes reaches B's catalogue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_figures_follow_the_catalogue() {
    let net = TestNet::new(2).await;
    net.connect(0, 1).await;
    let b = 1;
    let router = peerpack_node::api::router(net.inner(b).clone());
    let resp = router
        .oneshot(
            Request::get("/live")
                .header("host", "127.0.0.1:7777")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut stream = Box::pin(resp.into_body().into_data_stream());
    let mut buffer = String::new();
    let first = next_status(&mut stream, &mut buffer).await;
    assert_eq!(first["packages"], 0, "{first}");
    assert!(first["upload_rate"].as_str().unwrap().ends_with("/s"));
    peerpack_node::publish::publish(net.inner(0), example("github-actions-ci"))
        .await
        .unwrap();
    // Events come when a figure changes; the catalogue's comes once the package arrives.
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let next = next_status(&mut stream, &mut buffer).await;
        if next["packages"] == 1 {
            assert_ne!(next["catalogue"], first["catalogue"]);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no event with the package"
        );
    }
    // Another site cannot read the stream.
    let (s, _, _) = get_with(
        &net,
        b,
        "/live",
        "127.0.0.1:7777",
        &[("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "cors")],
    )
    .await;
    assert_eq!(s, 403);
    drop(stream);
    net.shutdown().await;
}
