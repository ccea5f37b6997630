//! The real `peerpack` binary as three separate node processes on loopback: start,
//! bootstrap, publish on one, search and info on another, status and peers, clean shutdown.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::*;

#[test]
fn three_processes_publish_search_info() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..3).map(|i| tmp.path().join(format!("n{i}"))).collect();

    // Without a node, commands say so and how to start one.
    let o = run(&dirs[0], &["status"]);
    assert_eq!(o.status.code(), Some(6), "no node: exit 6");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no node is running") && err.contains("peerpack node"),
        "{err}"
    );

    let nodes: Vec<NodeProc> = dirs.iter().map(|d| NodeProc::start(d)).collect();
    assert!(nodes[0].addr().starts_with("/ip4/127.0.0.1/tcp/"));
    // n1 and n2 join through n0.
    for i in [1, 2] {
        let out = ok(&dirs[i], &["bootstrap", &nodes[0].addr()]);
        assert!(
            out.contains(nodes[0].info()["peer_id"].as_str().unwrap()),
            "{out}"
        );
    }
    let bad = run(&dirs[1], &["bootstrap", "/ip4/127.0.0.1/tcp/9"]);
    assert_eq!(bad.status.code(), Some(3), "refused input: exit 3");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/p2p/"));

    // Publish from n1 with a path relative to this process's working directory.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let published = bin()
        .current_dir(&examples)
        .arg("--data-dir")
        .arg(&dirs[1])
        .args([
            "publish",
            "packs/react-components",
            "--json",
            // Its dependency is published elsewhere, later.
            "--allow-unresolved",
        ])
        .output()
        .unwrap();
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    let published: serde_json::Value = serde_json::from_slice(&published.stdout).unwrap();
    assert_eq!(published["name"], "react-components");

    // n2 finds it.
    wait_until("n2 to find react-components", || {
        let hits = json(&dirs[2], &["search", "storybook", "--json"]);
        hits.as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "react-components")
    });
    let hits = json(
        &dirs[2],
        &["search", "react", "--tag", "typescript", "--json"],
    );
    let hit = &hits[0];
    for key in ["name", "version", "description", "content_id", "score"] {
        assert!(!hit[key].is_null(), "search --json lacks {key}: {hit}");
    }
    assert_eq!(hit["content_id"], published["content_id"]);
    let text = ok(&dirs[2], &["search", "react"]);
    assert!(
        text.contains("react-components") && text.contains("0.9.2"),
        "{text}"
    );

    let info = json(&dirs[2], &["info", "react-components", "--json"]);
    assert_eq!(info["name"], "react-components");
    assert_eq!(
        info["owner"],
        json(&dirs[1], &["status", "--json"])["publisher"]
    );
    assert_eq!(info["versions"][0]["version"], "0.9.2");
    assert_eq!(info["versions"][0]["content_id"], published["content_id"]);
    // A requirement selects the versions that match it.
    let matched = json(&dirs[2], &["info", "react-components@^0.9", "--json"]);
    assert_eq!(matched["versions"][0]["version"], "0.9.2", "{matched}");
    let missing = run(&dirs[2], &["info", "react-components@^1"]);
    assert_eq!(missing.status.code(), Some(4));
    let missing = run(&dirs[2], &["info", "react-components@9.9.9"]);
    assert_eq!(missing.status.code(), Some(4), "not found: exit 4");
    // With --json, the error is JSON too, with the code scripts match on.
    let missing = run(&dirs[2], &["info", "no-such-package", "--json"]);
    assert_eq!(missing.status.code(), Some(4));
    let err: serde_json::Value = serde_json::from_slice(&missing.stdout).unwrap();
    assert_eq!(err["error"]["code"], "not_found", "{err}");
    assert!(String::from_utf8_lossy(&missing.stderr).starts_with("error: "));

    let status = json(&dirs[2], &["status", "--json"]);
    assert!(status["connected_peers"].as_u64().unwrap() >= 1, "{status}");
    assert_eq!(status["catalogue_size"], 1);
    assert!(
        status["routing_table_size"].as_u64().unwrap() >= 1,
        "{status}"
    );
    let peers = json(&dirs[2], &["peers", "--json"]);
    let p0 = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer_id"] == nodes[0].info()["peer_id"])
        .unwrap_or_else(|| panic!("n0 missing from {peers}"));
    assert_eq!(p0["connected"], true);
    assert!(p0["score"].as_f64().unwrap() > 0.0);
    assert!(
        p0["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a.as_str().unwrap().starts_with("/ip4/127."))
    );
    let peer = ok(&dirs[2], &["peer", p0["peer_id"].as_str().unwrap()]);
    assert!(peer.contains("score"), "{peer}");

    for n in nodes {
        n.stop();
    }
}

#[test]
fn install_across_processes_with_lock_file_gc_and_pins() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..2).map(|i| tmp.path().join(format!("n{i}"))).collect();
    let nodes: Vec<NodeProc> = dirs.iter().map(|d| NodeProc::start(d)).collect();
    ok(&dirs[1], &["bootstrap", &nodes[0].addr()]);
    let packs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/packs");
    for pack in ["github-actions-ci", "rust-cli"] {
        ok(&dirs[0], &["publish", packs.join(pack).to_str().unwrap()]);
    }
    wait_until("n1 to know rust-cli", || {
        run(&dirs[1], &["info", "rust-cli", "--json"])
            .status
            .success()
    });

    // Install from the project directory, as a user would.
    let project = tmp.path().join("project");
    std::fs::create_dir(&project).unwrap();
    let out: serde_json::Value = serde_json::from_str(&ok_in(
        &project,
        &dirs[1],
        &["install", "rust-cli", "--json"],
    ))
    .unwrap();
    let installed = out["installed"].as_array().unwrap();
    assert_eq!(installed.len(), 2, "{out}");
    let rust_cli = &installed[1];
    assert_eq!(rust_cli["name"], "rust-cli");
    assert_eq!(rust_cli["version"], "1.2.0");
    for key in ["content_id", "path", "sources"] {
        assert!(
            !rust_cli[key].is_null(),
            "install --json lacks {key}: {out}"
        );
    }
    assert_eq!(rust_cli["sources"][0], nodes[0].info()["peer_id"]);
    let target = project.join("peerpack_packages/rust-cli");
    assert_eq!(rust_cli["path"], target.to_str().unwrap());
    assert_eq!(
        std::fs::read(target.join("peerpack.toml")).unwrap(),
        std::fs::read(packs.join("rust-cli/peerpack.toml")).unwrap()
    );
    let lock = std::fs::read_to_string(project.join("peerpack.lock")).unwrap();
    assert!(
        lock.contains(rust_cli["content_id"].as_str().unwrap()),
        "{lock}"
    );

    // `status` shows the key figures: the provider lookup of the install (one: the provider
    // that delivered the first archive also announced the second, so that one needs none),
    // the gossip that brought the two packages, the download rate while it is fresh.
    let status = json(&dirs[1], &["status", "--json"]);
    let providers = status["dht_queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["kind"] == "providers")
        .cloned()
        .unwrap();
    assert!(
        providers["results"]["found"].as_u64() >= Some(1),
        "{status}"
    );
    assert!(providers["p50_ms"].as_f64().is_some(), "{status}");
    assert!(status["download_rate"].as_f64() > Some(0.0), "{status}");
    wait_until("n1 to count the announcements it accepted", || {
        json(&dirs[1], &["status", "--json"])["gossip"]["accepted"].as_u64() >= Some(1)
    });
    let text = ok(&dirs[1], &["status"]);
    for line in [
        "dht providers",
        "found (p50 ",
        "gossip ",
        "transfer rate",
        "refused ",
    ] {
        assert!(text.contains(line), "status lacks {line:?}: {text}");
    }

    // Text output (not a terminal: no progress bar, just the result).
    let text = ok_in(
        &project,
        &dirs[1],
        &["install", "--locked", "--to", "again"],
    );
    assert!(text.contains("installed rust-cli 1.2.0"), "{text}");
    assert!(!text.contains('\r'));
    assert_eq!(
        std::fs::read(project.join("again/rust-cli/peerpack.toml")).unwrap(),
        std::fs::read(packs.join("rust-cli/peerpack.toml")).unwrap()
    );
    let bad = run_in(&project, &dirs[1], &["install", "no-such-package"]);
    assert_eq!(
        bad.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("no-such-package"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // n1 now serves what it installed; its peer view of n0 shows the download.
    let peer = json(
        &dirs[1],
        &[
            "peer",
            nodes[0].info()["peer_id"].as_str().unwrap(),
            "--json",
        ],
    );
    assert!(peer["downloads_ok"].as_u64().unwrap() >= 2, "{peer}");
    assert!(peer["bytes_served"].as_u64().unwrap() > 0, "{peer}");

    // Pins and gc.
    ok(&dirs[1], &["pin", "rust-cli"]);
    let pins = json(&dirs[1], &["pins", "--json"]);
    assert_eq!(pins[0]["name"], "rust-cli");
    let gc = json(&dirs[1], &["gc", "--dry-run", "--json"]);
    assert_eq!(gc["dry_run"], true);
    assert_eq!(gc["removed"].as_array().unwrap().len(), 0, "{gc}");
    ok(&dirs[1], &["unpin", "rust-cli@1.2.0"]);

    for n in nodes {
        n.stop();
    }
}

/// Two processes publish `rust-cli` under their own keys; a third, which syncs no catalogue,
/// looks it up, finds it contested, and the user settles it with `trust`, `untrust` and
/// `install --owner`.
#[test]
fn contested_names_trust_and_untrust_across_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/packs");
    let (a_dir, s_dir, d_dir) = (
        tmp.path().join("a"),
        tmp.path().join("s"),
        tmp.path().join("d"),
    );
    let a = NodeProc::start(&a_dir);
    let s = NodeProc::start(&s_dir);
    for (dir, pack, extra) in [
        (&a_dir, "github-actions-ci", None),
        (&a_dir, "rust-cli", None),
        // The squatter has no github-actions-ci and does not care.
        (&s_dir, "rust-cli", Some("--allow-unresolved")),
    ] {
        let path = examples.join(pack);
        let mut args = vec!["publish", path.to_str().unwrap()];
        args.extend(extra);
        ok(dir, &args);
    }
    let a_key = json(&a_dir, &["status", "--json"])["publisher"]
        .as_str()
        .unwrap()
        .to_owned();
    let s_key = json(&s_dir, &["status", "--json"])["publisher"]
        .as_str()
        .unwrap()
        .to_owned();

    let d = NodeProc::start_with(&d_dir, &["--no-catalogue-sync"]);
    ok(&d_dir, &["bootstrap", &a.addr(), &s.addr()]);
    wait_until("d to have both peers in its routing table", || {
        json(&d_dir, &["status", "--json"])["routing_table_size"]
            .as_u64()
            .unwrap()
            >= 2
    });

    let info = json(&d_dir, &["info", "rust-cli", "--json"]);
    assert_eq!(info["status"], "contested", "{info}");
    assert!(info["owner"].is_null());
    let mut claimants: Vec<&str> = info["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["publisher"].as_str().unwrap())
        .collect();
    claimants.sort();
    let mut expected = vec![a_key.as_str(), s_key.as_str()];
    expected.sort();
    assert_eq!(claimants, expected);
    let text = ok(&d_dir, &["info", "rust-cli"]);
    assert!(
        text.contains("CONTESTED") && text.contains(&s_key),
        "{text}"
    );
    // Asked directly, the DHT shows both claims, and both holders of the one archive (the
    // same directory packs to the same bytes whoever signs it).
    let text = ok(&d_dir, &["dht", "name", "rust-cli"]);
    assert!(
        text.contains("2 keys claim it") && text.contains(&a_key) && text.contains(&s_key),
        "{text}"
    );
    let cid = json(&a_dir, &["info", "rust-cli", "--json"])["versions"][0]["content_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut holders: Vec<String> = [&a_dir, &s_dir]
        .iter()
        .map(|d| {
            json(d, &["status", "--json"])["peer_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    holders.sort();
    let found = json(&d_dir, &["dht", "providers", &cid, "--json"]);
    let mut listed: Vec<String> = found["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, holders, "{found}");
    let text = ok(&d_dir, &["dht", "providers", &cid, "--first"]);
    assert!(text.starts_with("1 provider of"), "{text}");
    let bad = run(&d_dir, &["dht", "providers", "blake3:00"]);
    assert_eq!(bad.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a content id"));

    let hits = json(&d_dir, &["search", "rust-cli", "--json"]);
    assert_eq!(hits[0]["name"], "rust-cli", "{hits}");
    assert_eq!(hits[0]["contested"], true, "{hits}");

    let to = tmp.path().join("project");
    std::fs::create_dir_all(&to).unwrap();
    let failed = run_in(&to, &d_dir, &["install", "rust-cli"]);
    assert_eq!(
        failed.status.code(),
        Some(5),
        "a contested name is a conflict: exit 5"
    );
    let err = String::from_utf8_lossy(&failed.stderr);
    for needle in [
        "contested",
        a_key.as_str(),
        s_key.as_str(),
        "--owner",
        "peerpack trust",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from: {err}");
    }
    assert!(!to.join("peerpack_packages/rust-cli").exists());

    // A bad key is refused with a reason.
    let bad = run(&d_dir, &["trust", "rust-cli", "ed25519:nothex"]);
    assert_eq!(bad.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a publisher key"));

    // trust: the pinned key owns it; untrust: it stays, as first seen.
    let t = json(&d_dir, &["trust", "rust-cli", &s_key, "--json"]);
    assert_eq!(t["owner"], s_key.as_str());
    assert_eq!(t["versions_known"], 1, "{t}");
    let info = json(&d_dir, &["info", "rust-cli", "--json"]);
    assert_eq!(info["owner"], s_key.as_str());
    assert_eq!(info["owner_source"], "trusted");
    assert_eq!(info["claims"][0]["publisher"], a_key.as_str());
    let trusted = json(&d_dir, &["trusted", "--json"]);
    assert_eq!(trusted[0]["name"], "rust-cli", "{trusted}");
    ok(&d_dir, &["untrust", "rust-cli"]);
    assert_eq!(json(&d_dir, &["trusted", "--json"]), serde_json::json!([]));
    let info = json(&d_dir, &["info", "rust-cli", "--json"]);
    assert_eq!(info["owner"], s_key.as_str());
    assert_eq!(info["owner_source"], "first-seen");

    // install --owner picks A's, pins it and installs it with its dependency.
    let report: serde_json::Value = serde_json::from_str(&ok_in(
        &to,
        &d_dir,
        &["install", "rust-cli", "--owner", &a_key, "--json"],
    ))
    .unwrap();
    assert!(
        report["installed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "rust-cli"),
        "{report}"
    );
    assert!(
        to.join("peerpack_packages/rust-cli/peerpack.toml")
            .is_file()
    );
    let lock = std::fs::read_to_string(to.join("peerpack.lock")).unwrap();
    assert!(lock.contains(&a_key), "{lock}");
    assert_eq!(
        json(&d_dir, &["info", "rust-cli", "--json"])["owner"],
        a_key.as_str()
    );
    d.stop();
    s.stop();
    a.stop();
}

/// Publishing on a node no peer is connected to succeeds, and says that nobody received it.
#[test]
fn publishing_alone_warns_that_no_peer_received_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("alone");
    let node = NodeProc::start(&dir);
    let packs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/packs");
    let o = run(
        &dir,
        &["publish", packs.join("github-actions-ci").to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no peer received it"), "{err}");
    node.stop();
}

/// A dead bootstrap peer is reported and retried; when it comes back (same key, same port) the
/// node reconnects by itself. A second node on a taken port is refused, and `bootstrap` to a
/// dead address fails.
#[test]
fn nodes_report_dead_peers_retry_them_and_refuse_a_taken_port() {
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir, c_dir) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    let port = free_port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let a = NodeProc::start_on(&a_dir, &listen, &[]);
    let a_addr = a.addr();

    // The port is taken: a second node there is refused, and says why.
    let o = bin()
        .args(["node", "--data-dir"])
        .arg(&c_dir)
        .args(["--listen", &listen])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("port is taken") && err.contains(&port.to_string()),
        "{err}"
    );

    // So is a second node on A's data directory: by node.json, and, with node.json gone, by
    // the store's lock.
    let second = || {
        bin()
            .args(["node", "--data-dir"])
            .arg(&a_dir)
            .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
            .output()
            .unwrap()
    };
    let a_pid = a.child.id();
    let a_api = a.info()["api"].as_str().unwrap().to_owned();
    let o = second();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("already running"), "{err}");
    assert!(
        err.contains(&format!("pid {a_pid}")),
        "names the pid: {err}"
    );
    assert!(err.contains(&a_api), "names the API address: {err}");
    let runtime = std::fs::read(a_dir.join("node.json")).unwrap();
    std::fs::remove_file(a_dir.join("node.json")).unwrap();
    let o = second();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("in use by another peerpack process"), "{err}");
    assert!(
        err.contains(&format!("pid {a_pid}, API {a_api}")),
        "the lock names its holder even without node.json: {err}"
    );
    std::fs::write(a_dir.join("node.json"), runtime).unwrap();

    let b = NodeProc::start_with(&b_dir, &["--bootstrap", &a_addr]);
    wait_until("b to reach a", || {
        json(&b_dir, &["status", "--json"])["connected_peers"] == 1
    });
    a.stop();
    wait_until("b to report a unreachable", || {
        let s = json(&b_dir, &["status", "--json"]);
        s["connected_peers"] == 0 && s["bootstrap"][0]["failures"].as_u64().unwrap_or(0) >= 1
    });
    let text = ok(&b_dir, &["status"]);
    assert!(text.contains("UNREACHABLE"), "{text}");
    // `bootstrap` to it now fails, per address.
    let o = run(&b_dir, &["bootstrap", &a_addr]);
    assert_eq!(
        o.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("could not connect"));

    // A comes back on its port with its key: B redials it without being told.
    let _a = NodeProc::start_on(&a_dir, &listen, &[]);
    wait_until("b to reconnect to a", || {
        let s = json(&b_dir, &["status", "--json"]);
        s["connected_peers"] == 1 && s["bootstrap"][0]["connected"] == true
    });
    let o = run(&b_dir, &["bootstrap", &a_addr, "--json"]);
    assert!(o.status.success());
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d[0]["connected"], true, "{d}");
    b.stop();
}

/// Every documented exit status comes from the case it names, and with `--json` every failure
/// is one JSON object on stdout with its code (130, a cancelled install, is in
/// lifecycle.rs).
#[test]
fn every_exit_status_and_json_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    let _node = NodeProc::start(&dir);
    let bad_pack = tmp.path().join("bad");
    std::fs::create_dir(&bad_pack).unwrap();
    std::fs::write(
        bad_pack.join("peerpack.toml"),
        "[package]\nname = \"Bad Name\"\n",
    )
    .unwrap();
    /// Arguments, environment, exit status, error code.
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, i32, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["pack".into(), bad_pack.display().to_string()],
            vec![],
            1,
            "failed",
        ),
        (
            vec!["bootstrap".into(), "/ip4/127.0.0.1/tcp/9".into()],
            vec![],
            3,
            "bad_request",
        ),
        (
            vec!["info".into(), "no-such-package".into()],
            vec![],
            4,
            "not_found",
        ),
        (vec!["keygen".into()], vec![], 5, "conflict"),
        (
            vec!["status".into(), "--api".into(), "http://127.0.0.1:1".into()],
            vec![],
            6,
            "unreachable",
        ),
        (
            vec!["pin".into(), "anything".into()],
            vec![("PEERPACK_API_TOKEN", "00")],
            7,
            "unauthorized",
        ),
    ];
    for (args, env, status, code) in cases {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.push("--json");
        let o = bin()
            .arg("--data-dir")
            .arg(&dir)
            .args(&args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(status),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: stdout is not JSON ({e}): {}",
                String::from_utf8_lossy(&o.stdout)
            )
        });
        assert_eq!(v["error"]["code"], code, "{args:?}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    // Usage errors are clap's: status 2, before any JSON is possible.
    let o = run(&dir, &["search", "--limit", "0"]);
    assert_eq!(o.status.code(), Some(2));

    // -v says what went on: the request, the node's answer, each cause, the exit status.
    let o = run(&dir, &["info", "no-such-package", "-v"]);
    assert_eq!(o.status.code(), Some(4));
    let err = String::from_utf8_lossy(&o.stderr);
    for expected in [
        "request to the node",
        "/v1/packages/no-such-package",
        "status=404",
        "the node refused the call",
        "\"code\":\"not_found\"",
        "error: ",
        "exit status 4 (not_found)",
    ] {
        assert!(err.contains(expected), "-v lacks {expected:?}: {err}");
    }
    let o = run(&dir, &["status", "--api", "http://127.0.0.1:1", "-v"]);
    assert_eq!(o.status.code(), Some(6));
    let err = String::from_utf8_lossy(&o.stderr);
    for expected in [
        "no answer from the node",
        "connect=true",
        "error: cannot reach the node",
        "  caused by: ",
        "exit status 6 (unreachable)",
    ] {
        assert!(err.contains(expected), "-v lacks {expected:?}: {err}");
    }
    // Without -v, one line.
    let o = run(&dir, &["status", "--api", "http://127.0.0.1:1"]);
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1);
}

/// A node.json left by a node that died does not block a start, even when its pid now belongs
/// to a live process (here, this test): the store's lock decides.
#[test]
fn a_stale_node_json_naming_a_live_pid_does_not_block_a_start() {
    let dir = tempfile::tempdir().unwrap();
    let stale = serde_json::json!({
        "peer_id": "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
        "listen_addrs": ["/ip4/127.0.0.1/tcp/1"],
        "api": "http://127.0.0.1:1",
        "pid": std::process::id(),
    });
    std::fs::write(dir.path().join("node.json"), stale.to_string()).unwrap();
    let mut child = bin()
        .arg("node")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the node refused to start ({status}): {err}");
        }
        let info: Option<serde_json::Value> = std::fs::read_to_string(dir.path().join("node.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if info.is_some_and(|i| i["pid"] == pid) {
            break;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "the node never replaced node.json"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(dir.path(), &["status"]);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
