//! The web page in a real browser: headless Chromium (Debian's `chromium` with
//! `chromium-driver`, which `.ci/run` installs) driven over WebDriver with `fantoccini`,
//! against real nodes serving real HTTP on 127.0.0.1. It searches, filters by tag, opens a
//! package, follows a dependency link, sees a package published on another node appear on the
//! front page without a reload, installs with the operator's session, and checks that a page
//! opened without the session cannot install. Screenshots of each page go to
//! `target/screenshots/`.
//!
//! Without `chromedriver` on the PATH the test says so and passes, except under CI
//! (`CI` set), where it fails: there the browser must be installed.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TIMEOUT, TestNet, examples, wait_searchable};
use fantoccini::{Client, ClientBuilder, Locator};

/// The chromedriver process, killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where a program is on the PATH.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Start chromedriver and a headless Chromium session; `None` (with a message) when
/// chromedriver is not installed outside CI.
async fn browser() -> Option<(Driver, Client)> {
    let Some(chromedriver) = which("chromedriver") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromedriver is not on the PATH: install Debian's chromium and chromium-driver (.ci/run does)"
        );
        eprintln!(
            "skipped: chromedriver is not on the PATH (apt install chromium chromium-driver)"
        );
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver(child);
    let deadline = Instant::now() + TIMEOUT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut args = vec![
        "--headless=new",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
    ];
    // Root (CI in a container) cannot use Chromium's sandbox.
    if rustix_is_root() {
        args.push("--no-sandbox");
    }
    let mut chrome = serde_json::json!({ "args": args });
    if let Some(bin) = which("chromium") {
        chrome["binary"] = bin.to_string_lossy().into();
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), chrome);
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    Some((driver, client))
}

/// Whether this process runs as root.
fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Save a screenshot of what the browser shows as `target/screenshots/NAME.png`.
async fn screenshot(client: &Client, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Wait until `css` matches an element whose text contains `text`.
async fn wait_text(client: &Client, css: &str, text: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Ok(elements) = client.find_all(Locator::Css(css)).await {
            for e in elements {
                if e.text().await.is_ok_and(|t| t.contains(text)) {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no {css} with {text:?} in time; the page says:\n{}",
            client.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Serve `html` to every request on a new port of 127.0.0.1 (another origin than any node's);
/// its URL.
async fn hostile_page(html: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
        html.len()
    );
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

/// A small pack named `name` in a new directory.
fn pack(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("peerpack.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"Arrived while the page was open\"\nlicense = \"MIT\"\nauthors = [\"t\"]\ntags = [\"live\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("README.md"), "# Live\n").unwrap();
    dir
}

//   A ── B     A publishes the example packs; a browser uses B's page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_searches_filters_browses_sees_live_updates_and_installs_as_operator() {
    let Some((_driver, client)) = browser().await else {
        return;
    };
    let net = TestNet::new(2).await;
    net.connect(0, 1).await;
    for dir in examples() {
        peerpack_node::publish::publish(net.inner(0), dir)
            .await
            .unwrap();
    }
    let b = 1;
    wait_searchable(net.inner(b), "rust", "rust-cli").await;
    wait_searchable(net.inner(b), "ci", "github-actions-ci").await;
    let base = net.node(b).api_url().trim_end_matches('/').to_owned();

    // The front page, then a search typed into the box.
    client.goto(&format!("{base}/")).await.unwrap();
    wait_text(&client, "h1", "Packages").await;
    screenshot(&client, "front").await;
    // Results come as one types, without a new page: a mark set on the document stays.
    client
        .execute("document.body.dataset.mark = 'typed'; return null;", vec![])
        .await
        .unwrap();
    let q = client.find(Locator::Id("q")).await.unwrap();
    q.send_keys("pytho").await.unwrap();
    wait_text(&client, "h1#results-heading", "1 result").await;
    wait_text(&client, "ol.hits a.name", "python-package").await;
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("q=pytho")
    );
    let mark = client
        .execute("return document.body.dataset.mark || null;", vec![])
        .await
        .unwrap();
    assert_eq!(mark, serde_json::json!("typed"), "typing loaded a new page");
    q.clear().await.unwrap();
    q.send_keys("rust").await.unwrap();
    client
        .find(Locator::Css("form.search button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&client, "ol.hits a.name", "rust-cli").await;
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("q=rust")
    );
    screenshot(&client, "search").await;

    // A tag filter from the facets: only what carries the tag remains.
    client
        .find(Locator::Css("aside.facets a[href*='tag=clap']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&client, "p.filters", "clap").await;
    let names: Vec<String> = {
        let mut v = Vec::new();
        for e in client
            .find_all(Locator::Css("ol.hits a.name"))
            .await
            .unwrap()
        {
            v.push(e.text().await.unwrap());
        }
        v
    };
    assert_eq!(names, ["rust-cli"]);

    // Open the package, then follow a dependency link.
    client
        .find(Locator::Css("ol.hits a.name[href='/packages/rust-cli']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&client, "h1", "rust-cli").await;
    // With the script, the install command has a copy button.
    let copy = client
        .find(Locator::Css("button[data-copy='install-command']"))
        .await
        .unwrap();
    assert!(copy.is_displayed().await.unwrap());
    screenshot(&client, "package").await;
    client
        .find(Locator::Css(
            "ul.deps a[href='/packages/github-actions-ci']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&client, "h1", "github-actions-ci").await;
    // rust-cli depends on it: its dependents say so.
    wait_text(&client, "ul.dependents", "rust-cli").await;

    // A package published on A appears on B's open front page without a reload.
    client.goto(&format!("{base}/")).await.unwrap();
    wait_text(&client, "h1", "Packages").await;
    // Mark the document: a reload would lose the mark.
    client
        .execute(
            "document.body.dataset.mark = 'same-document'; return null;",
            vec![],
        )
        .await
        .unwrap();
    // The live stream is open before the package is published.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let live = pack("live-arrival");
    peerpack_node::publish::publish(net.inner(0), live.path().to_owned())
        .await
        .unwrap();
    wait_text(&client, "ol.hits a.name", "live-arrival").await;
    let mark = client
        .execute("return document.body.dataset.mark || null;", vec![])
        .await
        .unwrap();
    assert_eq!(
        mark,
        serde_json::json!("same-document"),
        "the page was reloaded"
    );
    screenshot(&client, "live").await;

    // The network page shows the peer.
    client.goto(&format!("{base}/network")).await.unwrap();
    wait_text(&client, "table.peers", "connected").await;
    screenshot(&client, "network").await;

    // A page opened without the operator's session is read-only, and a request made from it
    // cannot install.
    let project = tempfile::tempdir().unwrap();
    let project_dir = project.path().to_str().unwrap().to_owned();
    client
        .goto(&format!("{base}/packages/rust-cli"))
        .await
        .unwrap();
    wait_text(&client, "p.note", "Read-only").await;
    let forms = client.find(Locator::Id("operator")).await.unwrap();
    assert!(!forms.is_displayed().await.unwrap());
    let status = client
        .execute_async(
            "const [project, done] = arguments;
             fetch('/ui/install', {method: 'POST', body: new URLSearchParams({package: 'rust-cli', project})})
               .then(r => done(r.status), e => done(String(e)));",
            vec![serde_json::json!(project_dir)],
        )
        .await
        .unwrap();
    assert_eq!(status, serde_json::json!(401));
    assert!(!project.path().join("peerpack_packages").exists());

    // The operator signs in with `peerpack ui`'s link and installs from the page.
    let token = net.inner(b).api_token().to_owned();
    let api = peerpack_api::Client::new(&base, Some(&token)).unwrap();
    let link = api.ui_link().await.unwrap();
    client.goto(&link.url).await.unwrap();
    wait_text(&client, "h1", "Packages").await;
    client
        .goto(&format!("{base}/packages/rust-cli"))
        .await
        .unwrap();
    wait_text(&client, "h1", "rust-cli").await;
    let field = client.find(Locator::Id("project")).await.unwrap();
    assert!(field.is_displayed().await.unwrap());
    assert!(
        !client
            .find(Locator::Id("read-only"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    field.send_keys(&project_dir).await.unwrap();
    client
        .find(Locator::Css(
            "form[action='/ui/install'] button[type=submit]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&client, "h1", "Installed").await;
    screenshot(&client, "installed").await;
    assert!(
        project
            .path()
            .join("peerpack_packages/rust-cli/peerpack.toml")
            .is_file()
    );
    assert!(project.path().join("peerpack.lock").is_file());

    // Even signed in, a page of another origin on this machine (another port: the same site)
    // cannot install: it cannot read the session, which is kept for B's origin only, and a
    // form it posts to B is refused.
    let other = tempfile::tempdir().unwrap();
    let other_dir = other.path().to_str().unwrap().to_owned();
    let hostile = hostile_page(&format!(
        "<!DOCTYPE html><title>hostile</title>\
         <p id=stolen></p>\
         <form id=f method=post action=\"{base}/ui/install\">\
         <input name=package value=rust-cli><input name=project value=\"{other_dir}\"></form>\
         <script>document.getElementById('stolen').textContent = \
           String(localStorage.getItem('peerpack-session'));\
           setTimeout(() => document.getElementById('f').submit(), 1500);</script>"
    ))
    .await;
    client.goto(&hostile).await.unwrap();
    let stolen = client
        .find(Locator::Id("stolen"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(stolen, "null", "another origin read the session");
    // The form landed on B, which refused it.
    wait_text(&client, "main", "same-site request refused").await;
    assert!(!other.path().join("peerpack_packages").exists());
    screenshot(&client, "refused").await;

    client.close().await.unwrap();
    net.shutdown().await;
}
