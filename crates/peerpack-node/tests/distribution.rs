//! Package distribution across real nodes: install from peers, multi-source verified
//! downloads, resume, unsafe archives, dependencies, the lock file and garbage collection.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{TIMEOUT, TestNet, example, wait_for, wait_searchable};
use peerpack_node::install::{InstallProgress, InstallReport, InstallRequest};
use peerpack_node::{Context as Inner, Error};

/// A package directory with `payload` bytes of incompressible data.
fn package(name: &str, version: &str, deps: &[(&str, &str)], payload: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"{version}\"\ndescription = \"{name} test template\"\nlicense = \"MIT\"\nauthors = [\"t\"]\n"
    );
    if !deps.is_empty() {
        manifest.push_str("\n[dependencies]\n");
        for (d, req) in deps {
            manifest.push_str(&format!("{d} = \"{req}\"\n"));
        }
    }
    std::fs::write(dir.path().join("peerpack.toml"), manifest).unwrap();
    std::fs::create_dir(dir.path().join("template")).unwrap();
    std::fs::write(
        dir.path().join("template/README.md"),
        format!("{name} {version}\n"),
    )
    .unwrap();
    // xorshift: zstd cannot shrink it, so the archive is about `payload` bytes.
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (payload as u64) ^ (name.len() as u64);
    let mut data = Vec::with_capacity(payload);
    while data.len() < payload {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(payload);
    std::fs::write(dir.path().join("template/payload.bin"), data).unwrap();
    dir
}

/// Publish, dependencies resolved or not: these tests publish a dependency cycle, and
/// dependents before what they depend on.
async fn publish(inner: &Arc<Inner>, dir: &Path) -> peerpack_node::publish::Published {
    let options = peerpack_node::publish::PublishOptions {
        allow_unresolved: true,
        ..Default::default()
    };
    peerpack_node::publish::publish_with(inner, dir.to_owned(), options)
        .await
        .unwrap()
}

async fn install(
    inner: &Arc<Inner>,
    packages: &[&str],
    to: &Path,
    lock: Option<&str>,
    locked: bool,
) -> Result<InstallReport, Error> {
    inner
        .install(
            InstallRequest {
                packages: packages.iter().map(ToString::to_string).collect(),
                to: to.to_owned(),
                lock: lock.map(ToString::to_string),
                locked,
                owner: None,
                ..Default::default()
            },
            Arc::new(InstallProgress::default()),
        )
        .await
}

/// Every file under `root`, relative, with its bytes; the install marker left out.
fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = all_files(root);
    out.retain(|(p, _)| p != Path::new(peerpack_node::install::MARKER));
    out
}

/// Every file under `root`, relative, with its bytes.
fn all_files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(root).unwrap().to_owned(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

//   B, C, D ── A ── (A stops) ; E ── C
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installs_come_from_any_peer_that_holds_the_archive() {
    let mut net = TestNet::new(5).await; // 0 = A, 1 = B, 2 = C, 3 = D, 4 = E
    for i in 1..4 {
        net.connect(i, 0).await;
    }
    net.connect(2, 3).await;
    let dep = publish(net.inner(0), &example("github-actions-ci")).await;
    let main = publish(net.inner(0), &example("rust-cli")).await;
    let a = net.node(0).peer_id().to_string();

    // D installs rust-cli and, through it, its dependency.
    wait_searchable(net.inner(3), "clap", "rust-cli").await;
    let out = tempfile::tempdir().unwrap();
    let report = install(net.inner(3), &["rust-cli"], out.path(), None, false)
        .await
        .unwrap();
    let names: Vec<_> = report.installed.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["github-actions-ci", "rust-cli"],
        "dependencies first"
    );
    assert_eq!(report.installed[1].content_id, main.content_id.to_string());
    assert_eq!(report.installed[0].content_id, dep.content_id.to_string());
    assert_eq!(report.installed[1].sources, std::slice::from_ref(&a));
    assert_eq!(
        tree(&out.path().join("rust-cli")),
        tree(&example("rust-cli")),
        "the installed files are the published ones"
    );
    assert!(report.lock.contains(&main.content_id.to_string()));

    // C installs too; then A, the publisher, leaves.
    wait_searchable(net.inner(2), "clap", "rust-cli").await;
    let c_out = tempfile::tempdir().unwrap();
    install(net.inner(2), &["rust-cli"], c_out.path(), None, false)
        .await
        .unwrap();
    net.stop(0).await;

    // E has never seen A: it learns the package from C and installs it from C or D.
    net.connect(4, 2).await;
    let e_out = tempfile::tempdir().unwrap();
    let report = wait_for("E to install rust-cli", TIMEOUT, || async {
        install(net.inner(4), &["rust-cli@^1.2"], e_out.path(), None, false)
            .await
            .ok()
    })
    .await;
    let holders = [
        net.node(2).peer_id().to_string(),
        net.node(3).peer_id().to_string(),
    ];
    let rust_cli = &report.installed[1];
    assert!(!rust_cli.sources.is_empty());
    assert!(
        rust_cli.sources.iter().all(|s| holders.contains(s)),
        "{:?} came from a peer that installed it",
        rust_cli.sources
    );
    assert_eq!(
        tree(&e_out.path().join("rust-cli")),
        tree(&example("rust-cli"))
    );

    // Installing again changes nothing and fetches nothing.
    let again = install(net.inner(4), &["rust-cli"], e_out.path(), None, false)
        .await
        .unwrap();
    assert!(again.installed.iter().all(|i| i.cached && i.unchanged));
    let status = net.inner(4).status().await.unwrap();
    assert!(status.record_cache.hits > 0, "{:?}", status.record_cache);
    net.shutdown().await;
}

//   C ── A (honest), C ── B (serves corrupt pieces)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_serving_bad_pieces_is_dropped_and_penalised() {
    let net = TestNet::new(3).await; // 0 = A, 1 = B, 2 = C
    net.connect(1, 0).await;
    let pkg = package("big-template", "1.0.0", &[], 12 * 1024 * 1024);
    let published = publish(net.inner(0), pkg.path()).await;
    wait_searchable(net.inner(1), "big", "big-template").await;
    let b_out = tempfile::tempdir().unwrap();
    install(net.inner(1), &["big-template"], b_out.path(), None, false)
        .await
        .unwrap();

    // B's copy rots: one flipped byte in every piece.
    let hex = published.content_id.to_hex();
    let blob = net.data_dir(1).join("blobs").join(&hex[..2]).join(&hex);
    let mut bytes = std::fs::read(&blob).unwrap();
    for piece in 0..bytes.len().div_ceil(1 << 20) {
        bytes[piece * (1 << 20) + 100] ^= 0xff;
    }
    std::fs::write(&blob, bytes).unwrap();

    net.connect(2, 0).await;
    net.connect(2, 1).await;
    wait_searchable(net.inner(2), "big", "big-template").await;
    // C must know B as a provider: B announced nothing, so wait for its DHT provider record.
    let c = net.inner(2);
    let b_id = net.node(1).peer_id();
    wait_for("B's provider record", TIMEOUT, || async {
        c.net_handle()
            .get_providers(
                peerpack_net::protocol::provider_key(&published.content_id),
                Duration::from_secs(5),
            )
            .await
            .ok()
            .filter(|p| p.contains(&b_id))
    })
    .await;
    let out = tempfile::tempdir().unwrap();
    let report = install(c, &["big-template"], out.path(), None, false)
        .await
        .unwrap();
    assert_eq!(
        report.installed[0].sources,
        [net.node(0).peer_id().to_string()],
        "only the honest provider's bytes were used"
    );
    assert_eq!(tree(&out.path().join("big-template")), tree(pkg.path()));
    let bad = c.peer_view(&b_id.to_string()).unwrap();
    let good = c.peer_view(&net.node(0).peer_id().to_string()).unwrap();
    assert!(bad.invalid_data >= 1, "{bad:?}");
    assert!(good.downloads_ok >= 1 && good.bytes_served > 0, "{good:?}");
    assert!(
        bad.score < good.score - 0.2,
        "bad {} vs good {}",
        bad.score,
        good.score
    );
    net.shutdown().await;
}

//   D ── A, A slowed down; D stops halfway and starts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_download_resumes_from_what_is_on_disk() {
    let mut net = TestNet::new(0).await;
    let a = net.add_with(|c| c.upload_limit = Some(4 << 20)).await;
    let d = net.add().await;
    net.connect(d, a).await;
    let size = 16 * 1024 * 1024;
    let pkg = package("slow-template", "1.0.0", &[], size);
    let published = publish(net.inner(a), pkg.path()).await;
    wait_searchable(net.inner(d), "slow", "slow-template").await;

    let out = tempfile::tempdir().unwrap();
    let first = {
        let inner = net.inner(d).clone();
        let to = out.path().to_owned();
        tokio::spawn(async move { install(&inner, &["slow-template"], &to, None, false).await })
    };
    let inner = net.inner(d).clone();
    wait_for("half of the archive", TIMEOUT, || async {
        let s = inner.status().await.ok()?;
        s.downloading
            .iter()
            .any(|(_, total, done)| *done >= total / 2)
            .then_some(())
    })
    .await;
    drop(inner);
    net.stop(d).await;
    let err = first.await.unwrap().unwrap_err();
    assert!(!err.to_string().is_empty());
    assert!(
        !out.path().join("slow-template").exists(),
        "nothing installed from half an archive"
    );

    net.inner(a).set_upload_limit(None);
    net.restart(d).await;
    net.connect(d, a).await;
    let report = install(net.inner(d), &["slow-template"], out.path(), None, false)
        .await
        .unwrap();
    let i = &report.installed[0];
    assert_eq!(i.content_id, published.content_id.to_string());
    assert!(i.resumed_bytes >= published.archive_size / 2, "{i:?}");
    assert_eq!(
        i.resumed_bytes + i.fetched_bytes,
        published.archive_size,
        "nothing fetched twice: {i:?}"
    );
    assert_eq!(tree(&out.path().join("slow-template")), tree(pkg.path()));
    net.shutdown().await;
}

/// A zstd tar with a manifest and an entry whose path climbs out of the package.
fn escaping_archive(manifest: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in [
        ("peerpack.toml", manifest.as_bytes()),
        ("../evil.txt", b"gotcha"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        tar.append(&h, data).unwrap();
    }
    zstd::encode_all(&tar.into_inner().unwrap()[..], 3).unwrap()
}

//   B ── A, where A's store holds a signed record for an archive that escapes its directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_escaping_its_directory_is_refused() {
    use peerpack_core::record::RecordFields;
    use peerpack_core::{Manifest, PackageRecord, PublisherKey};

    let mut net = TestNet::new(2).await; // 0 = A (malicious publisher), 1 = B
    net.stop(0).await;
    {
        let dir = net.data_dir(0);
        let key = PublisherKey::load(&dir.join("publisher.key")).unwrap();
        let text = "[package]\nname = \"escape-pack\"\nversion = \"1.0.0\"\ndescription = \"escapes\"\nlicense = \"MIT\"\nauthors = [\"m\"]\n";
        let archive = escaping_archive(text);
        let mut store = peerpack_store::Store::open(dir).unwrap();
        let id = store.blobs.put(&archive).unwrap();
        let manifest = Manifest::parse(text, Path::new("peerpack.toml")).unwrap();
        let record = PackageRecord::sign(
            RecordFields {
                manifest,
                content_id: id,
                archive_size: archive.len() as u64,
                seq: 1,
                published_at: 1,
            },
            &key,
        )
        .unwrap();
        store.insert_record(&record).unwrap();
    }
    net.restart(0).await;
    net.connect(1, 0).await;
    wait_searchable(net.inner(1), "escapes", "escape-pack").await;

    let base = tempfile::tempdir().unwrap();
    let to = base.path().join("packages");
    let err = install(net.inner(1), &["escape-pack"], &to, None, false)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("escape-pack") && msg.contains(".."), "{msg}");
    assert!(!base.path().join("evil.txt").exists());
    assert!(!to.join("evil.txt").exists());
    let left: Vec<_> = std::fs::read_dir(&to)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing left behind: {left:?}");

    // The archive matched its signed content id, so its publisher signed something unsafe:
    // the version is flagged, hidden from search, dropped from B's store, and never fetched
    // again, from anyone.
    let b = net.inner(1);
    let info = b.info("escape-pack").await.unwrap();
    let reason = info.versions[0].unsafe_reason.clone().unwrap();
    assert!(reason.contains(".."), "{reason}");
    assert_eq!(info.owner_unsafe_archives, 1);
    assert!(
        common::search(b, "escapes")
            .await
            .iter()
            .all(|h| h.name != "escape-pack"),
        "an unsafe package is still offered"
    );
    let hex = info.versions[0]
        .content_id
        .trim_start_matches("blake3:")
        .to_owned();
    assert!(
        !net.data_dir(1)
            .join("blobs")
            .join(&hex[..2])
            .join(&hex)
            .exists(),
        "the unsafe archive is still in B's store"
    );
    let before = b.status().await.unwrap();
    let err = install(b, &["escape-pack"], &to, None, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("flagged unsafe"), "{err}");
    let after = b.status().await.unwrap();
    assert_eq!(
        (
            after.downloads_ok,
            after.downloads_failed,
            after.bytes_downloaded
        ),
        (
            before.downloads_ok,
            before.downloads_failed,
            before.bytes_downloaded
        ),
        "the unsafe archive was fetched again"
    );
    net.shutdown().await;
}

//   B ── A
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_resolve_and_a_cycle_fails_clearly() {
    let net = TestNet::new(2).await;
    net.connect(1, 0).await;
    let mut dirs = Vec::new();
    for (name, version, deps) in [
        ("dep-b", "1.0.0", vec![]),
        ("dep-b", "1.1.0", vec![]),
        ("dep-b", "2.0.0", vec![]),
        ("dep-a", "1.0.0", vec![("dep-b", "^1")]),
        ("cyc-x", "1.0.0", vec![("cyc-y", "^1")]),
        ("cyc-y", "1.0.0", vec![("cyc-x", "^1")]),
        ("needs-ghost", "1.0.0", vec![("ghost", "^1")]),
    ] {
        let d = package(name, version, &deps, 1000);
        publish(net.inner(0), d.path()).await;
        dirs.push(d);
    }
    let b = net.inner(1);
    wait_searchable(b, "needs", "needs-ghost").await;
    wait_searchable(b, "cyc", "cyc-y").await;
    let out = tempfile::tempdir().unwrap();
    let report = install(b, &["dep-a"], out.path(), None, false)
        .await
        .unwrap();
    let got: Vec<_> = report
        .installed
        .iter()
        .map(|i| format!("{}@{}", i.name, i.version))
        .collect();
    assert_eq!(got, ["dep-b@1.1.0", "dep-a@1.0.0"], "the highest ^1, first");
    assert!(out.path().join("dep-b/template/README.md").is_file());

    let err = install(b, &["cyc-x"], out.path(), None, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cycle") && err.contains("cyc-x") && err.contains("cyc-y"),
        "{err}"
    );
    let err = install(b, &["needs-ghost"], out.path(), None, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ghost") && err.contains("needs-ghost"),
        "{err}"
    );
    let err = install(b, &["dep-b@^3"], out.path(), None, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("dep-b") && err.contains("2.0.0"), "{err}");
    assert!(!out.path().join("cyc-x").exists());
    net.shutdown().await;
}

//   B ── A
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_install_reproduces_the_same_files() {
    let net = TestNet::new(2).await;
    net.connect(1, 0).await;
    let v1 = package("lock-me", "1.0.0", &[], 5000);
    publish(net.inner(0), v1.path()).await;
    let b = net.inner(1);
    wait_searchable(b, "lock", "lock-me").await;
    let first = tempfile::tempdir().unwrap();
    let report = install(b, &["lock-me"], first.path(), None, false)
        .await
        .unwrap();
    let lock = report.lock;

    let v2 = package("lock-me", "1.1.0", &[], 6000);
    publish(net.inner(0), v2.path()).await;
    wait_for("lock-me 1.1.0 at B", TIMEOUT, || async {
        b.info("lock-me")
            .await
            .ok()
            .filter(|i| i.versions.len() == 2)
    })
    .await;

    let second = tempfile::tempdir().unwrap();
    let locked = install(b, &[], second.path(), Some(&lock), true)
        .await
        .unwrap();
    assert_eq!(locked.installed[0].version, "1.0.0");
    assert_eq!(
        tree(&second.path().join("lock-me")),
        tree(&first.path().join("lock-me")),
        "--locked reproduces the same files"
    );
    // Without --locked the lock still holds its version; without a lock the latest wins.
    let unlocked = tempfile::tempdir().unwrap();
    let kept = install(b, &["lock-me"], unlocked.path(), Some(&lock), false)
        .await
        .unwrap();
    assert_eq!(kept.installed[0].version, "1.0.0");
    assert!(kept.changes.is_empty(), "{:?}", kept.changes);
    let latest = install(b, &["lock-me"], unlocked.path(), None, false)
        .await
        .unwrap();
    assert_eq!(latest.installed[0].version, "1.1.0");
    assert!(latest.lock.contains("1.1.0") && !latest.lock.contains("\"1.0.0\""));

    // A lock file that names other bytes is refused, and so is a missing one.
    let forged_id = "blake3:".to_owned() + &"0".repeat(64);
    let start = lock.find("blake3:").unwrap();
    let tampered = format!("{}{}{}", &lock[..start], forged_id, &lock[start + 71..]);
    let err = install(b, &[], second.path(), Some(&tampered), true)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("lock-me") && err.contains(&forged_id), "{err}");
    let err = install(b, &["lock-me"], second.path(), None, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("peerpack.lock"), "{err}");
    net.shutdown().await;
}

//   B ── A; B's cache quota is 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_keeps_published_installed_and_pinned_archives() {
    let mut net = TestNet::new(1).await;
    let b = net.add_with(|c| c.cache_quota = 0).await;
    net.connect(b, 0).await;
    let keep = package("keep-me", "1.0.0", &[], 3000);
    let drop_me = package("drop-me", "1.0.0", &[], 4000);
    let still = package("still-here", "1.0.0", &[], 2000);
    let own = package("b-own", "1.0.0", &[], 1000);
    for d in [&keep, &drop_me, &still] {
        publish(net.inner(0), d.path()).await;
    }
    let own_published = publish(net.inner(b), own.path()).await;
    let inner = net.inner(b);
    wait_searchable(inner, "still", "still-here").await;
    wait_searchable(inner, "drop", "drop-me").await;
    wait_searchable(inner, "keep", "keep-me").await;
    let gone = tempfile::tempdir().unwrap();
    let stays = tempfile::tempdir().unwrap();
    let r = install(inner, &["keep-me", "drop-me"], gone.path(), None, false)
        .await
        .unwrap();
    let id_of = |name: &str| {
        r.installed
            .iter()
            .find(|i| i.name == name)
            .unwrap()
            .content_id
            .clone()
    };
    let ids = [id_of("keep-me"), id_of("drop-me")];
    let kept_install = install(inner, &["still-here"], stays.path(), None, false)
        .await
        .unwrap();
    inner.pin("keep-me").await.unwrap();
    // The user deletes the directory keep-me and drop-me went to.
    drop(gone);

    let dry = inner.gc(true).await.unwrap();
    let dropped: Vec<_> = dry.removed.iter().map(|r| r.content_id.clone()).collect();
    assert_eq!(dropped, [ids[1].clone()], "{dry:?}");
    assert_eq!(dry.removed[0].packages, ["drop-me@1.0.0"]);
    let status = inner.status().await.unwrap();
    assert_eq!(status.archives, 4, "a dry run removes nothing");

    let done = inner.gc(false).await.unwrap();
    assert_eq!(done.removed.len(), 1);
    assert_eq!(
        done.protected, 3,
        "pinned, installed and published: {done:?}"
    );
    let status = inner.status().await.unwrap();
    assert_eq!(status.archives, 3);
    let hex = |id: &str| id.trim_start_matches("blake3:").to_owned();
    let blob = |id: &str| {
        let h = hex(id);
        net.data_dir(b).join("blobs").join(&h[..2]).join(&h)
    };
    assert!(blob(&ids[0]).is_file(), "the pinned archive stays");
    assert!(!blob(&ids[1]).exists());
    assert!(blob(&kept_install.installed[0].content_id).is_file());
    assert!(blob(&own_published.content_id.to_string()).is_file());

    // Unpinned, keep-me goes too.
    inner.unpin("keep-me").await.unwrap();
    let done = inner.gc(false).await.unwrap();
    assert_eq!(done.removed.len(), 1);
    assert!(!blob(&ids[0]).exists());
    net.shutdown().await;
}

//   B ── A; B installs the same package twice at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_installs_at_once_download_the_archive_once() {
    let net = TestNet::new(2).await;
    net.connect(1, 0).await;
    let pkg = package("twice-template", "1.0.0", &[], 3 * 1024 * 1024);
    let published = publish(net.inner(0), pkg.path()).await;
    let b = net.inner(1);
    wait_searchable(b, "twice", "twice-template").await;
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (r1, r2) = tokio::join!(
        install(b, &["twice-template"], one.path(), None, false),
        install(b, &["twice-template"], two.path(), None, false)
    );
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    let fetched = r1.installed[0].fetched_bytes + r2.installed[0].fetched_bytes;
    assert_eq!(
        fetched, published.archive_size,
        "one download, one cache hit"
    );
    assert_eq!(
        tree(&one.path().join("twice-template")),
        tree(&two.path().join("twice-template"))
    );
    net.shutdown().await;
}

/// What is in the install directory `to`, sorted.
fn listing(to: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(to)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

async fn install_forced(
    inner: &Arc<Inner>,
    packages: &[&str],
    to: &Path,
) -> Result<InstallReport, Error> {
    inner
        .install(
            InstallRequest {
                packages: packages.iter().map(ToString::to_string).collect(),
                to: to.to_owned(),
                force: true,
                ..Default::default()
            },
            Arc::new(InstallProgress::default()),
        )
        .await
}

/// A directory of the user's own: a few files, a nested one and a git directory.
fn users_own(dir: &Path) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    std::fs::write(dir.join("notes.md"), "three weeks of work\n").unwrap();
    std::fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(dir.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installing_over_a_directory_peerpack_did_not_create_is_refused_unless_forced() {
    let net = TestNet::new(1).await;
    let inner = net.inner(0);
    let pkg = package("rust-tool", "1.0.0", &[], 2000);
    publish(inner, pkg.path()).await;
    let to = tempfile::tempdir().unwrap();
    let mine = to.path().join("rust-tool");
    users_own(&mine);
    let before = all_files(&mine);

    let err = install(inner, &["rust-tool"], to.path(), None, false)
        .await
        .unwrap_err();
    let Error::Conflict(msg) = &err else {
        panic!("expected a conflict, got {err:?}");
    };
    assert!(
        msg.contains(mine.to_str().unwrap()) && msg.contains("--force"),
        "{msg}"
    );
    assert_eq!(all_files(&mine), before, "every file is untouched");
    assert_eq!(listing(to.path()), ["rust-tool"], "nothing left beside it");

    // A tree peerpack installed for another package is not this one's to replace either.
    let elsewhere = tempfile::tempdir().unwrap();
    let taken = elsewhere.path().join("rust-tool");
    std::fs::create_dir_all(&taken).unwrap();
    std::fs::write(
        taken.join(peerpack_node::install::MARKER),
        "name = \"something-else\"\nversion = \"1.0.0\"\ncontent_id = \"blake3:00\"\ninstalled_at = 0\n",
    )
    .unwrap();
    let err = install(inner, &["rust-tool"], elsewhere.path(), None, false)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("something-else") && m.contains("--force")),
        "{err:?}"
    );

    // With force, it is replaced by the package, marker included, and nothing is left over.
    let report = install_forced(inner, &["rust-tool"], to.path())
        .await
        .unwrap();
    assert!(!report.installed[0].unchanged);
    assert_eq!(tree(&mine), tree(pkg.path()));
    let marker = peerpack_node::install::Marker::read(&mine).unwrap();
    assert_eq!(
        (marker.name.as_str(), marker.version.as_str()),
        ("rust-tool", "1.0.0")
    );
    assert_eq!(marker.content_id, report.installed[0].content_id);
    assert_eq!(listing(to.path()), ["rust-tool"]);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinstalls_and_upgrades_replace_peerpacks_own_tree() {
    let net = TestNet::new(1).await;
    let inner = net.inner(0);
    let v1 = package("up-tool", "1.0.0", &[], 2000);
    publish(inner, v1.path()).await;
    let to = tempfile::tempdir().unwrap();
    let target = to.path().join("up-tool");
    install(inner, &["up-tool"], to.path(), None, false)
        .await
        .unwrap();
    assert_eq!(tree(&target), tree(v1.path()));
    let again = install(inner, &["up-tool"], to.path(), None, false)
        .await
        .unwrap();
    assert!(again.installed[0].unchanged);

    let v2 = package("up-tool", "1.1.0", &[], 3000);
    publish(inner, v2.path()).await;
    let up = install(inner, &["up-tool@1.1.0"], to.path(), None, false)
        .await
        .unwrap();
    assert!(!up.installed[0].unchanged);
    assert_eq!(tree(&target), tree(v2.path()));
    let marker = peerpack_node::install::Marker::read(&target).unwrap();
    assert_eq!(marker.version, "1.1.0");
    assert_eq!(
        listing(to.path()),
        ["up-tool"],
        "no old tree left beside it"
    );

    // And back down: a tree peerpack installed may be any version of the same package.
    install(inner, &["up-tool@=1.0.0"], to.path(), None, false)
        .await
        .unwrap();
    assert_eq!(tree(&target), tree(v1.path()));
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_killed_mid_swap_is_put_right_by_the_next_one() {
    use peerpack_node::install::{DISCARDED, REPLACED, STAGED};
    let net = TestNet::new(1).await;
    let inner = net.inner(0);
    let forced = package("forced-tool", "1.0.0", &[], 2000);
    let other = package("other-tool", "1.0.0", &[], 2000);
    publish(inner, forced.path()).await;
    publish(inner, other.path()).await;
    let to = tempfile::tempdir().unwrap();
    install(inner, &["other-tool"], to.path(), None, false)
        .await
        .unwrap();

    // A `--force` install of forced-tool over the user's directory died after moving it
    // aside, before the new tree got in. Another install of other-tool died after its new tree
    // got in, before the old one was removed. A pid above the kernel's pid_max cannot run.
    let dead = 4_194_304u32 + 7;
    let mine = to.path().join("forced-tool");
    users_own(&mine);
    let before = all_files(&mine);
    let aside = to.path().join(format!(".forced-tool{REPLACED}{dead}-1"));
    std::fs::rename(&mine, &aside).unwrap();
    let staged = to.path().join(format!(".forced-tool{STAGED}{dead}-1"));
    std::fs::create_dir_all(staged.join("template")).unwrap();
    std::fs::write(staged.join("template/half.bin"), [0u8; 100]).unwrap();
    let replaced = to.path().join(format!(".other-tool{REPLACED}{dead}-2"));
    std::fs::create_dir_all(replaced.join("template")).unwrap();
    let discarded = to.path().join(format!(".other-tool{DISCARDED}{dead}-3"));
    std::fs::create_dir_all(discarded.join("template")).unwrap();

    // The next install, of anything into this directory, puts the user's tree back.
    let report = install(inner, &["other-tool"], to.path(), None, false)
        .await
        .unwrap();
    assert!(report.installed[0].unchanged);
    assert_eq!(listing(to.path()), ["forced-tool", "other-tool"]);
    assert_eq!(
        all_files(&mine),
        before,
        "the old tree is back, byte for byte"
    );
    assert_eq!(tree(&to.path().join("other-tool")), tree(other.path()));

    // It is still the user's: without --force it stays.
    let err = install(inner, &["forced-tool"], to.path(), None, false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(all_files(&mine), before);

    // An upgrade killed the same way: peerpack's own 1.0.0 tree is put back, then replaced.
    std::fs::remove_dir_all(&mine).unwrap();
    install(inner, &["forced-tool"], to.path(), None, false)
        .await
        .unwrap();
    let v2 = package("forced-tool", "1.1.0", &[], 3000);
    publish(inner, v2.path()).await;
    std::fs::rename(&mine, &aside).unwrap();
    install(inner, &["forced-tool@1.1.0"], to.path(), None, false)
        .await
        .unwrap();
    assert_eq!(tree(&mine), tree(v2.path()));
    assert_eq!(listing(to.path()), ["forced-tool", "other-tool"]);
    net.shutdown().await;
}

/// The unpacked tree the node of `data_dir` keeps of archive `id`, once it is there.
async fn unpacked_kept(data_dir: &Path, id: &str) -> PathBuf {
    let hex = id.strip_prefix("blake3:").unwrap().to_owned();
    let index = data_dir.join(format!("blobs/unpacked/{hex}.index"));
    wait_for("the node to keep the archive unpacked", TIMEOUT, || async {
        index.is_file().then_some(())
    })
    .await;
    data_dir.join(format!("blobs/unpacked/{hex}"))
}

//   A ── B (install.link = "hardlink"), C (default: auto)
// B installs a pack from A: downloaded and unpacked, then kept unpacked. Installing it into
// another project places the files from that tree as read-only hard links. A user makes a
// linked file writable and edits it, which edits the tree: B's next install notices, unpacks
// the archive again, and places the archive's bytes, not the edit. C, with the default, copies
// (or clones) files from its tree: the user's own, writable, and editing them leaves the tree
// whole.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinstalls_place_files_from_the_unpacked_tree_and_never_an_edited_one() {
    use std::os::unix::fs::MetadataExt;
    let mut net = TestNet::new(1).await;
    let b = net
        .add_with(|c| c.install_link = peerpack_store::unpacked::LinkMode::Hardlink)
        .await;
    let c = net.add().await;
    net.connect(b, 0).await;
    net.connect(c, 0).await;
    let pack = package("warm-pack", "1.0.0", &[], 100_000);
    let published = publish(net.inner(0), pack.path()).await;
    let id = published.content_id.to_string();
    wait_searchable(net.inner(b), "warm", "warm-pack").await;

    let first = tempfile::tempdir().unwrap();
    let report = install(net.inner(b), &["warm-pack"], first.path(), None, false)
        .await
        .unwrap();
    let i = &report.installed[0];
    assert!(!i.cached);
    assert_eq!(i.placed.as_deref(), Some("unpacked"));
    let kept = unpacked_kept(net.data_dir(b), &id).await;

    let second = tempfile::tempdir().unwrap();
    let report = install(net.inner(b), &["warm-pack"], second.path(), None, false)
        .await
        .unwrap();
    let i = &report.installed[0];
    assert!(i.cached);
    assert_eq!(i.placed.as_deref(), Some("hard-linked"));
    let installed = second.path().join("warm-pack");
    assert_eq!(tree(&installed), tree(pack.path()));
    let payload = installed.join("template/payload.bin");
    let meta = std::fs::metadata(&payload).unwrap();
    assert!(meta.permissions().readonly(), "linked files are read-only");
    assert_eq!(
        meta.ino(),
        std::fs::metadata(kept.join("template/payload.bin"))
            .unwrap()
            .ino()
    );

    // The user forces an edit through the link.
    let mut perms = meta.permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&payload, perms).unwrap();
    std::fs::write(&payload, b"edited through a hard link").unwrap();

    let third = tempfile::tempdir().unwrap();
    let report = install(net.inner(b), &["warm-pack"], third.path(), None, false)
        .await
        .unwrap();
    assert_eq!(
        report.installed[0].placed.as_deref(),
        Some("unpacked"),
        "the edited tree is not used"
    );
    assert_eq!(tree(&third.path().join("warm-pack")), tree(pack.path()));
    // And it is kept unpacked again, whole.
    let kept = unpacked_kept(net.data_dir(b), &id).await;
    assert_eq!(
        std::fs::read(kept.join("template/payload.bin")).unwrap(),
        std::fs::read(pack.path().join("template/payload.bin")).unwrap()
    );

    // C, with the default, copies: writable files of the user's own.
    wait_searchable(net.inner(c), "warm", "warm-pack").await;
    let c_first = tempfile::tempdir().unwrap();
    install(net.inner(c), &["warm-pack"], c_first.path(), None, false)
        .await
        .unwrap();
    let c_kept = unpacked_kept(net.data_dir(c), &id).await;
    let c_second = tempfile::tempdir().unwrap();
    let report = install(net.inner(c), &["warm-pack"], c_second.path(), None, false)
        .await
        .unwrap();
    let how = report.installed[0].placed.clone().unwrap();
    assert!(how == "copied" || how == "reflinked", "{how}");
    let payload = c_second.path().join("warm-pack/template/payload.bin");
    assert!(
        !std::fs::metadata(&payload)
            .unwrap()
            .permissions()
            .readonly()
    );
    std::fs::write(&payload, b"the user's edit").unwrap();
    assert_eq!(
        std::fs::read(c_kept.join("template/payload.bin")).unwrap(),
        std::fs::read(pack.path().join("template/payload.bin")).unwrap(),
        "editing a copy leaves the tree whole"
    );
    net.shutdown().await;
}

//   C ── A (publishes) ── B ── M
// A's provider record lives at C, so B knows no provider of the pack but M, a sybil that
// claims it and serves nothing. B's install starts from M alone (the first provider its
// lookup finds: its own store answers first), M fails, and B then looks the archive up in
// the DHT to its end, finds A and installs from A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_providers_known_fail_the_install_looks_up_every_provider() {
    claimed_by_a_sybil(false).await;
}

// The same, with a sybil that takes the outline request and never answers: B gives a
// provider that is a mere claim 3 s, not the 20 s a provider found by a whole lookup gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_provider_that_hangs_costs_the_install_seconds_not_its_stall() {
    let started = std::time::Instant::now();
    claimed_by_a_sybil(true).await;
    assert!(
        started.elapsed() < peerpack_node::download::STALL,
        "the install waited {:?} for the sybil",
        started.elapsed()
    );
}

/// A bare peer dialling node `target` that keeps every request it receives unanswered.
async fn hanging_peer(
    key: peerpack_net::p2p::identity::Keypair,
    net: &TestNet,
    target: usize,
) -> peerpack_net::NetHandle {
    let listen = vec![peerpack_node::config::loopback_listen()];
    let spawned = peerpack_net::spawn(peerpack_net::Config::new(key, listen))
        .await
        .unwrap();
    let mut events = spawned.events;
    tokio::spawn(async move {
        // Held, never answered: each request's reply channel stays open.
        let mut held = Vec::new();
        while let Some(e) = events.recv().await {
            held.push(e);
        }
    });
    spawned
        .handle
        .dial(net.node(target).listen_addrs()[0].clone())
        .await
        .unwrap();
    spawned.handle
}

async fn claimed_by_a_sybil(hang: bool) {
    let net = TestNet::new(3).await; // 0 = A, 1 = C, 2 = B
    let (a, c, b) = (0, 1, 2);
    net.connect(c, a).await;
    let pack = package("claimed-pack", "1.0.0", &[], 3000);
    let published = publish(net.inner(a), pack.path()).await;
    wait_for("C to hold A's provider record", TIMEOUT, || async {
        let s = net.inner(c).status().await.ok()?;
        (s.dht.provider_records >= 1).then_some(())
    })
    .await;
    net.connect(b, a).await;
    wait_searchable(net.inner(b), "claimed", "claimed-pack").await;

    let m_key = peerpack_net::p2p::identity::Keypair::generate_ed25519();
    let m_id = m_key.public().to_peer_id().to_string();
    let m = if hang {
        hanging_peer(m_key, &net, b).await
    } else {
        common::bare_peer(m_key, &net, b).await.handle
    };
    m.start_providing(peerpack_net::protocol::provider_key(&published.content_id))
        .await
        .unwrap();
    wait_for("B to know M as a provider", TIMEOUT, || async {
        common::search(net.inner(b), "claimed")
            .await
            .iter()
            .any(|h| h.name == "claimed-pack" && h.providers_online >= 1)
            .then_some(())
    })
    .await;

    let out = tempfile::tempdir().unwrap();
    let report = install(net.inner(b), &["claimed-pack"], out.path(), None, false)
        .await
        .unwrap();
    let a_id = net.node(a).peer_id().to_string();
    assert_eq!(report.installed[0].sources, vec![a_id]);
    assert_eq!(tree(&out.path().join("claimed-pack")), tree(pack.path()));
    let m_view = net.inner(b).peer_view(&m_id).unwrap();
    assert_eq!(
        m_view.downloads_failed, 1,
        "M was asked, and failed: {m_view:?}"
    );
    m.shutdown().await.unwrap();
    net.shutdown().await;
}
