//! A node killed with SIGKILL at any moment of publish, install, sync or gc comes back whole.
//!
//! Each phase first times one uncut run of its operation, then repeats it with the node killed
//! after a delay drawn from a seeded generator, spread over that time (and a little past it).
//! After every kill, with the node down:
//! - the store opens and `PRAGMA integrity_check` answers ok;
//! - every archive in the blob store hashes to its content id;
//! - the search index agrees with SQLite: as many documents as packages, and each name shows
//!   its latest version;
//!
//! then the node restarts and the operation, run again, succeeds.
//!
//! `PEERPACK_CRASH_SEED=N` replays a run; every delay is printed.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{TIMEOUT, bin, free_port, json, ok, run_in, wait_until};
use peerpack_core::record::RecordFields;
use peerpack_core::{ContentId, Manifest, PackageRecord, PublisherKey};
use peerpack_store::{SearchQuery, Store};

/// Kills per phase (four phases).
const KILLS_PER_PHASE: usize = 13;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A delay uniform in [0, 1.3 × `typical`].
    fn delay(&mut self, typical: Duration) -> Duration {
        let max = typical.as_micros() as u64 * 13 / 10 + 1;
        Duration::from_micros(self.next() % max)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// A node process on a data directory, always on the same port.
struct Victim {
    dir: PathBuf,
    port: u16,
    bootstrap: Option<String>,
    child: Option<Child>,
}

impl Victim {
    fn new(dir: &Path, bootstrap: Option<String>) -> Self {
        Self {
            dir: dir.to_owned(),
            port: free_port(),
            bootstrap,
            child: None,
        }
    }

    fn start(&mut self) {
        let mut cmd = bin();
        cmd.arg("node")
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{}", self.port)])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.log()).unwrap());
        if let Some(b) = &self.bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        let child = cmd.spawn().unwrap();
        let pid = child.id();
        self.child = Some(child);
        // node.json may be left by the killed node: wait for this one's.
        let start = Instant::now();
        loop {
            let ours = std::fs::read_to_string(self.dir.join("node.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .is_some_and(|v| v["pid"] == pid);
            if ours {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "the node on {} exited ({status}) before it was ready:\n{}",
                    self.dir.display(),
                    std::fs::read_to_string(self.log()).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "the node on {} did not get ready:\n{}",
                self.dir.display(),
                std::fs::read_to_string(self.log()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Where the node's log goes (replaced at each start).
    fn log(&self) -> PathBuf {
        self.dir.with_extension("log")
    }

    fn addr(&self) -> String {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(self.dir.join("node.json")).unwrap())
                .unwrap();
        v["listen_addrs"][0].as_str().unwrap().to_owned()
    }

    /// SIGKILL.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The store in `dir` after a kill: opens, passes SQLite's integrity check, every archive
/// verifies, and search agrees with the database. `then` may change the store (while it is
/// open and the node down) before it closes.
fn check_store(dir: &Path, what: &str, then: impl FnOnce(&mut Store)) {
    let mut store =
        Store::open(dir).unwrap_or_else(|e| panic!("{what}: the store does not open: {e}"));
    let conn = rusqlite::Connection::open(dir.join(peerpack_store::DB_FILE)).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "{what}: integrity check");
    drop(conn);
    for id in store.blobs.list().unwrap() {
        store
            .blobs
            .verify(&id)
            .unwrap_or_else(|e| panic!("{what}: archive {id} does not verify: {e}"));
    }
    assert_eq!(
        store.index.len(),
        store.db.package_count().unwrap(),
        "{what}: search documents and packages"
    );
    let latest = store.db.latest_records().unwrap();
    // Every name of a small catalogue; a spread sample of a large one.
    let step = (latest.len() / 150).max(1);
    for r in latest.iter().step_by(step) {
        let hits = store
            .search(&SearchQuery {
                text: r.name().to_string(),
                limit: 20,
                ..Default::default()
            })
            .unwrap();
        let hit = hits.iter().find(|h| h.name == r.name().as_str());
        assert_eq!(
            hit.map(|h| h.version.as_str()),
            Some(r.version().to_string().as_str()),
            "{what}: search shows {} at its latest version",
            r.name()
        );
    }
    then(&mut store);
}

/// Run `peerpack` against the node in `dir`, in `cwd`, without waiting.
fn spawn_client(dir: &Path, cwd: &Path, args: &[&str]) -> Child {
    bin()
        .current_dir(cwd)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn succeeds(what: &str, o: &Output) {
    assert!(
        o.status.success(),
        "{what} failed after a restart: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A package `name` `version` in `root` with `size` bytes of incompressible data.
fn big_package(root: &Path, name: &str, version: &str, size: usize, rng: &mut Rng) -> PathBuf {
    let dir = root.join(format!("{name}-{version}"));
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::write(
        dir.join("peerpack.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"{version}\"\ndescription = \"{name}, crash test data\"\nlicense = \"MIT\"\nauthors = [\"Test <t@example.org>\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("files/data.bin"), rng.bytes(size)).unwrap();
    dir
}

/// `n` signed records of distinct names, for a catalogue to sync.
fn catalogue(n: usize) -> Vec<PackageRecord> {
    let key = PublisherKey::from_secret_bytes(&[9; 32]);
    (0..n)
        .map(|i| {
            let text = format!(
                "[package]\nname = \"synced-{i:05}\"\nversion = \"1.0.{}\"\ndescription = \"template number {i} for the sync phase\"\nlicense = \"MIT\"\nauthors = [\"Test <t@example.org>\"]\ntags = [\"crash\", \"sync\"]\n",
                i % 7
            );
            let manifest = Manifest::parse(&text, Path::new("peerpack.toml")).unwrap();
            PackageRecord::sign(
                RecordFields {
                    manifest,
                    content_id: ContentId::of(format!("synced-{i}").as_bytes()),
                    archive_size: 100,
                    seq: 1,
                    published_at: 1_790_000_000,
                },
                &key,
            )
            .unwrap()
        })
        .collect()
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

#[test]
fn a_node_killed_at_any_point_of_publish_install_sync_and_gc_comes_back_whole() {
    let seed = std::env::var("PEERPACK_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe_u64);
    eprintln!("crash test seed {seed} (PEERPACK_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed | 1);
    // PEERPACK_CRASH_KEEP=1 keeps the data directories and the nodes' logs (DIR.log).
    let work = tempfile::tempdir().unwrap();
    let (w, _guard) = if std::env::var_os("PEERPACK_CRASH_KEEP").is_some() {
        let kept = work.keep();
        eprintln!("keeping {}", kept.display());
        (kept, None)
    } else {
        (work.path().to_owned(), Some(work))
    };
    let w = w.as_path();
    let mut kills = 0;

    // B: the peer that stays up. It holds a catalogue of 3,000 records to sync and the big
    // package to install.
    let b_dir = w.join("b");
    {
        let mut store = Store::open(&b_dir).unwrap();
        for chunk in catalogue(3_000).chunks(500) {
            for r in store.insert_records(chunk, None).unwrap() {
                r.unwrap();
            }
        }
    }
    let mut b = Victim::new(&b_dir, None);
    b.start();
    let b_addr = b.addr();
    let big = big_package(w, "big-pack", "1.0.0", 24 << 20, &mut rng);
    ok(
        &b_dir,
        &["publish", big.to_str().unwrap(), "--allow-unresolved"],
    );
    let b_packages = json(&b_dir, &["status", "--json"])["packages"]
        .as_u64()
        .unwrap();

    // A: the node killed, with its own data directory.
    let a_dir = w.join("a");
    let mut a = Victim::new(&a_dir, Some(b_addr.clone()));
    a.start();

    // ---- publish: A publishes a new version each time, killed while it does ----
    let next_package = |version: usize, rng: &mut Rng| {
        big_package(w, "crash-pub", &format!("1.0.{version}"), 6 << 20, rng)
    };
    let first = next_package(0, &mut rng);
    let typical = timed(|| {
        succeeds(
            "publish",
            &run_in(w, &a_dir, &["publish", first.to_str().unwrap()]),
        );
    });
    eprintln!("publish takes {typical:?}");
    for i in 0..KILLS_PER_PHASE {
        let version = i + 1;
        let pkg = next_package(version, &mut rng);
        let delay = rng.delay(typical);
        eprintln!("publish {i}: kill after {delay:?}");
        let mut client = spawn_client(&a_dir, w, &["publish", pkg.to_str().unwrap()]);
        std::thread::sleep(delay);
        a.kill();
        kills += 1;
        let _ = client.wait();
        check_store(&a_dir, &format!("publish {i}"), |_| {});
        a.start();
        succeeds(
            "publish",
            &run_in(w, &a_dir, &["publish", pkg.to_str().unwrap()]),
        );
        let info = json(&a_dir, &["info", "crash-pub", "--json"]);
        assert!(
            info["versions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["version"] == format!("1.0.{version}")),
            "publish {i}: the version is there after the rerun: {info}"
        );
    }

    // ---- install: A fetches B's 24 MiB package into a fresh project each time ----
    let big_id = json(&b_dir, &["info", "big-pack", "--json"])["versions"][0]["content_id"]
        .as_str()
        .unwrap()
        .parse::<ContentId>()
        .unwrap();
    let forget_big = |s: &mut Store| {
        // The next install must fetch again.
        if s.blobs.contains(&big_id) {
            s.blobs.remove(&big_id).unwrap();
        }
        s.db.forget_blob(&big_id).unwrap();
    };
    let project = |i: &str| {
        let p = w.join(format!("project-{i}"));
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    let p = project("first");
    let typical = timed(|| succeeds("install", &run_in(&p, &a_dir, &["install", "big-pack"])));
    eprintln!("install takes {typical:?}");
    a.kill();
    check_store(&a_dir, "before the install phase", forget_big);
    a.start();
    for i in 0..KILLS_PER_PHASE {
        let p = project(&i.to_string());
        let delay = rng.delay(typical);
        eprintln!("install {i}: kill after {delay:?}");
        let mut client = spawn_client(&a_dir, &p, &["install", "big-pack"]);
        std::thread::sleep(delay);
        a.kill();
        kills += 1;
        let _ = client.wait();
        check_store(&a_dir, &format!("install {i}"), |_| {});
        a.start();
        succeeds("install", &run_in(&p, &a_dir, &["install", "big-pack"]));
        succeeds("verify", &run_in(&p, &a_dir, &["verify"]));
        a.kill();
        check_store(&a_dir, &format!("after install {i}"), forget_big);
        a.start();
    }

    // ---- gc: A holds 150 cached archives more each time; gc with quota 0 removes them ----
    a.kill();
    let fill = |s: &mut Store, rng: &mut Rng| {
        for _ in 0..150 {
            let len = 4096 + (rng.next() % 8192) as usize;
            let bytes = rng.bytes(len);
            let id = s.blobs.put(&bytes).unwrap();
            s.db.touch_blob(&id, bytes.len() as u64).unwrap();
        }
    };
    std::fs::write(a_dir.join("config.toml"), "[cache]\nquota = 0\n").unwrap();
    check_store(&a_dir, "before the gc phase", |s| fill(s, &mut rng));
    a.start();
    let typical = timed(|| succeeds("gc", &run_in(w, &a_dir, &["gc"])));
    eprintln!("gc takes {typical:?}");
    for i in 0..KILLS_PER_PHASE {
        a.kill();
        check_store(&a_dir, &format!("before gc {i}"), |s| fill(s, &mut rng));
        a.start();
        let delay = rng.delay(typical);
        eprintln!("gc {i}: kill after {delay:?}");
        let mut client = spawn_client(&a_dir, w, &["gc"]);
        std::thread::sleep(delay);
        a.kill();
        kills += 1;
        let _ = client.wait();
        check_store(&a_dir, &format!("gc {i}"), |_| {});
        a.start();
        succeeds("gc", &run_in(w, &a_dir, &["gc"]));
        let left = json(&a_dir, &["gc", "--dry-run", "--json"]);
        assert_eq!(
            left["cached_bytes"], 0,
            "gc {i}: the rerun removed the rest: {left}"
        );
    }
    a.kill();

    // ---- sync: a fresh node pulls B's catalogue, killed while it does ----
    let wait_synced = |dir: &Path| {
        wait_until("the catalogue to sync", || {
            json(dir, &["status", "--json"])["packages"].as_u64() >= Some(b_packages)
        });
    };
    let typical = {
        let dir = w.join("sync-first");
        let mut n = Victim::new(&dir, Some(b_addr.clone()));
        timed(|| {
            n.start();
            wait_synced(&dir);
        })
    };
    eprintln!("sync takes {typical:?}");
    for i in 0..KILLS_PER_PHASE {
        let dir = w.join(format!("sync-{i}"));
        let mut n = Victim::new(&dir, Some(b_addr.clone()));
        let delay = rng.delay(typical);
        eprintln!("sync {i}: kill after {delay:?}");
        let t = Instant::now();
        // Started by hand: the kill may come before node.json is written.
        let child = bin()
            .arg("node")
            .arg("--data-dir")
            .arg(&dir)
            .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{}", n.port)])
            .args(["--bootstrap", &b_addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        n.child = Some(child);
        std::thread::sleep(delay.saturating_sub(t.elapsed()));
        n.kill();
        kills += 1;
        if dir.join(peerpack_store::DB_FILE).exists() {
            check_store(&dir, &format!("sync {i}"), |_| {});
        }
        n.start();
        wait_synced(&dir);
        n.kill();
        check_store(&dir, &format!("after sync {i}"), |_| {});
        assert!(t.elapsed() < TIMEOUT * 4);
    }

    b.kill();
    assert!(kills >= 50, "{kills} kills");
    eprintln!("{kills} kills, every store whole");
}
