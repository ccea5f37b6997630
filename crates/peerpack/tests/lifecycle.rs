//! The life of an installed package across real processes: install into a chosen directory,
//! a lock that keeps versions, outdated, update, verify and repair, list and remove.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;

fn lock_version(project: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(project.join("peerpack.lock")).unwrap();
    let lock: toml::Value = toml::from_str(&text).unwrap();
    lock.get("package")?
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .map(|p| p["version"].as_str().unwrap().to_owned())
}

/// A publisher node (started with `publisher_args`) and a user node that bootstrapped to it,
/// under `root/pub` and `root/user`.
fn publisher_and_user(
    root: &Path,
    publisher_args: &[&str],
) -> (std::path::PathBuf, std::path::PathBuf, NodeProc, NodeProc) {
    let (pub_dir, user_dir) = (root.join("pub"), root.join("user"));
    let publisher = NodeProc::start_with(&pub_dir, publisher_args);
    let user = NodeProc::start(&user_dir);
    ok(&user_dir, &["bootstrap", &publisher.addr()]);
    (pub_dir, user_dir, publisher, user)
}

/// A publisher that serves 256 KiB/s: an 8 MiB download takes half a minute.
const SLOW: &[&str] = &["--upload-limit", "262144"];

/// Wait until the node in `dir` answers `info SPEC`.
fn wait_known(dir: &Path, spec: &str) {
    wait_until(&format!("the node to know {spec}"), || {
        run(dir, &["info", spec, "--json"]).status.success()
    });
}

/// Wait until the node in `dir` has received bytes of a download.
fn wait_downloading(dir: &Path) {
    wait_until("a download to be under way", || {
        json(dir, &["status", "--json"])["downloading"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x[1].as_u64().unwrap_or(0) > 0))
    });
}

/// `big` 1.0.0 with 8 MiB that zstd cannot shrink.
fn big_package(root: &Path) -> std::path::PathBuf {
    let big = package(root, "big", "1.0.0", &[], "big\n");
    std::fs::write(big.join("files/blob.bin"), noise(8 << 20)).unwrap();
    big
}

#[test]
fn install_update_verify_repair_and_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let (pub_dir, user_dir, _publisher, _user) = publisher_and_user(tmp.path(), &[]);
    let src = tmp.path().join("src");
    let lib1 = package(&src, "lib", "1.0.0", &[], "lib one\n");
    let app = package(&src, "app", "1.0.0", &[("lib", "^1")], "app\n");
    for p in [&lib1, &app] {
        ok(&pub_dir, &["publish", p.to_str().unwrap()]);
    }
    wait_known(&user_dir, "app");

    // Install into a directory of our choosing: the lock remembers it and the root.
    let project = tmp.path().join("project");
    std::fs::create_dir(&project).unwrap();
    let text = ok_in(&project, &user_dir, &["install", "--to", "vendor", "app"]);
    assert!(
        text.contains("added app 1.0.0") && text.contains("added lib 1.0.0"),
        "{text}"
    );
    let lock = std::fs::read_to_string(project.join("peerpack.lock")).unwrap();
    assert!(
        lock.contains("roots = [\"app\"]") && lock.contains("to = \"vendor\""),
        "{lock}"
    );
    assert!(project.join("vendor/lib/files/template.txt").is_file());

    // A newer lib appears; a bare install and a repeated `install app` keep the locked one.
    let lib2 = package(&src, "lib", "1.1.0", &[], "lib two\n");
    ok(&pub_dir, &["publish", lib2.to_str().unwrap()]);
    wait_known(&user_dir, "lib@1.1.0");
    let text = ok_in(&project, &user_dir, &["install"]);
    assert!(text.contains("installed lib 1.0.0"), "{text}");
    assert!(
        !project.join("peerpack_packages").exists(),
        "a bare install ignored the lock's directory"
    );
    let text = ok_in(&project, &user_dir, &["install", "app"]);
    assert!(!text.contains("updated"), "{text}");
    assert_eq!(lock_version(&project, "lib").as_deref(), Some("1.0.0"));

    // outdated and update name the move; a dry run changes nothing.
    let rows: serde_json::Value =
        serde_json::from_str(&ok_in(&project, &user_dir, &["outdated", "--json"])).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "lib")
        .unwrap();
    assert_eq!(
        (
            row["current"].as_str(),
            row["wanted"].as_str(),
            row["latest"].as_str()
        ),
        (Some("1.0.0"), Some("1.1.0"), Some("1.1.0")),
        "{rows}"
    );
    let text = ok_in(&project, &user_dir, &["update", "--dry-run"]);
    assert!(
        text.contains("would be updated lib 1.0.0 → 1.1.0"),
        "{text}"
    );
    assert_eq!(lock_version(&project, "lib").as_deref(), Some("1.0.0"));
    let text = ok_in(&project, &user_dir, &["update"]);
    assert!(text.contains("updated lib 1.0.0 → 1.1.0"), "{text}");
    assert_eq!(lock_version(&project, "lib").as_deref(), Some("1.1.0"));
    assert_eq!(
        std::fs::read_to_string(project.join("vendor/lib/files/template.txt")).unwrap(),
        "lib two\n"
    );
    let text = ok_in(&project, &user_dir, &["outdated"]);
    assert!(
        text.contains("every locked package is at its latest version"),
        "{text}"
    );

    // verify finds each kind of drift; install --repair restores the tree.
    assert!(ok_in(&project, &user_dir, &["verify"]).contains("ok       lib 1.1.0"));
    let tree = project.join("vendor/lib/files");
    std::fs::remove_file(tree.join("template.txt")).unwrap();
    std::fs::write(tree.join("notes.md"), "edited\n").unwrap();
    std::fs::write(tree.join("extra.txt"), "mine\n").unwrap();
    let o = run_in(&project, &user_dir, &["verify", "--json"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let lib = report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "lib")
        .unwrap();
    assert_eq!(lib["state"], "drifted");
    let drift: Vec<(String, String)> = lib["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap().to_owned(),
                d["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for want in [
        ("files/template.txt", "missing"),
        ("files/notes.md", "modified"),
        ("files/extra.txt", "added"),
    ] {
        assert!(
            drift.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} not in {drift:?}"
        );
    }
    let text = ok_in(&project, &user_dir, &["install", "--repair"]);
    assert!(
        text.contains("installed lib 1.1.0") && text.contains("restored"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("template.txt")).unwrap(),
        "lib two\n"
    );
    assert!(!tree.join("extra.txt").exists());
    ok_in(&project, &user_dir, &["verify"]);

    // list reads the lock; remove refuses a mere dependency, then drops a root and its closure.
    let listed: serde_json::Value =
        serde_json::from_str(&ok_in(&project, &user_dir, &["list", "--json"])).unwrap();
    let roots: Vec<(&str, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["root"].as_bool().unwrap()))
        .collect();
    assert_eq!(roots, [("app", true), ("lib", false)]);
    let o = run_in(&project, &user_dir, &["remove", "lib"]);
    assert_eq!(
        o.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("dependency of app 1.0.0"));
    let text = ok_in(&project, &user_dir, &["remove", "app"]);
    assert!(
        text.contains("removed app 1.0.0") && text.contains("removed lib 1.1.0"),
        "{text}"
    );
    assert!(!project.join("vendor/app").exists() && !project.join("vendor/lib").exists());
    assert!(lock_version(&project, "lib").is_none());
    let o = run_in(&project, &user_dir, &["remove", "app"]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn yank_and_deprecate_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (pub_dir, user_dir, _publisher, _user) = publisher_and_user(tmp.path(), &[]);
    let src = tmp.path().join("src");
    for v in ["1.0.0", "1.1.0"] {
        let p = package(&src, "tool", v, &[], v);
        ok(&pub_dir, &["publish", p.to_str().unwrap()]);
    }
    wait_known(&user_dir, "tool@1.1.0");

    // Only the owner may yank; the user's node holds no key that owns `tool`.
    let o = run(&user_dir, &["yank", "tool@1.1.0"]);
    assert_eq!(
        o.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("only its owner"));
    let o = run(&pub_dir, &["yank", "tool@^1"]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // A project that locked 1.1.0 before the yank.
    let early = tmp.path().join("early");
    std::fs::create_dir(&early).unwrap();
    ok_in(&early, &user_dir, &["install", "tool"]);
    let text = ok(
        &pub_dir,
        &["yank", "tool@1.1.0", "--reason", "broken template"],
    );
    assert!(text.contains("yanked tool 1.1.0"), "{text}");
    ok(&pub_dir, &["deprecate", "tool@<1.1", "use 2.x"]);
    wait_until(
        "the user's node to see the yank and the deprecation",
        || {
            let info = json(&user_dir, &["info", "tool", "--json"]);
            let v = |ver: &str| {
                info["versions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|v| v["version"] == ver)
                    .cloned()
                    .unwrap()
            };
            v("1.1.0")["yanked"] == "broken template" && v("1.0.0")["deprecated"] == "use 2.x"
        },
    );
    let text = ok(&user_dir, &["info", "tool"]);
    assert!(
        text.contains("YANKED: broken template") && text.contains("deprecated: use 2.x"),
        "{text}"
    );

    // The early project keeps its locked 1.1.0, and is told it is yanked.
    let o = run_in(&early, &user_dir, &["install"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("installed tool 1.1.0"));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("warning: tool 1.1.0 is yanked by its owner: broken template"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // A fresh project gets 1.0.0, with the deprecation as a warning.
    let project = tmp.path().join("project");
    std::fs::create_dir(&project).unwrap();
    let o = run_in(&project, &user_dir, &["install", "tool"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("installed tool 1.0.0"));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("warning: tool 1.0.0 is deprecated by its owner: use 2.x"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // The yank can be taken back; then the resolver may pick 1.1.0 again.
    ok(&pub_dir, &["yank", "tool@1.1.0", "--undo"]);
    wait_until("the user's node to see the undo", || {
        let info = json(&user_dir, &["info", "tool@1.1.0", "--json"]);
        info["versions"][0]["yanked"].is_null()
    });
    let text = ok_in(&project, &user_dir, &["update"]);
    assert!(text.contains("updated tool 1.0.0 → 1.1.0"), "{text}");
}

/// Bytes zstd cannot shrink.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn ctrl_c_cancels_an_install_on_the_node_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (pub_dir, user_dir, _publisher, _user) = publisher_and_user(tmp.path(), SLOW);
    let src = tmp.path().join("src");
    let small = package(&src, "small", "1.0.0", &[], "small\n");
    let big = big_package(&src);
    for p in [&small, &big] {
        ok(&pub_dir, &["publish", p.to_str().unwrap()]);
    }
    wait_known(&user_dir, "big");
    let project = tmp.path().join("project");
    std::fs::create_dir(&project).unwrap();
    ok_in(&project, &user_dir, &["install", "small"]);
    let lock_before = std::fs::read_to_string(project.join("peerpack.lock")).unwrap();

    let mut cli = bin()
        .current_dir(&project)
        .arg("--data-dir")
        .arg(&user_dir)
        .args(["install", "big"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_downloading(&user_dir);
    let _ = std::process::Command::new("kill")
        .args(["-INT", &cli.id().to_string()])
        .status();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = cli.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "the CLI did not stop after Ctrl-C"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = cli.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("cancelled: nothing in"), "{stderr}");

    // The node stopped downloading; the target and the lock are as they were.
    wait_until("the node to stop downloading", || {
        json(&user_dir, &["status", "--json"])["downloading"]
            .as_array()
            .is_some_and(Vec::is_empty)
    });
    let mut left: Vec<String> = std::fs::read_dir(project.join("peerpack_packages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["small"]);
    assert_eq!(
        std::fs::read_to_string(project.join("peerpack.lock")).unwrap(),
        lock_before
    );
    ok_in(&project, &user_dir, &["verify"]);
}

#[test]
fn a_key_that_owns_names_is_exported_before_it_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    let node = NodeProc::start(&dir);
    let p = package(&tmp.path().join("src"), "mine", "1.0.0", &[], "mine\n");
    ok(&dir, &["publish", p.to_str().unwrap()]);
    let original = json(&dir, &["whoami", "--json"])["publisher"]
        .as_str()
        .unwrap()
        .to_owned();

    // Not while the node runs: it signs with the key it loaded.
    let o = run(&dir, &["keygen", "--force"]);
    assert_eq!(
        o.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("stop it first"));
    node.stop();

    // Not while it owns names, unless told so; the refusal names them.
    let o = run(&dir, &["keygen", "--force"]);
    assert_eq!(o.status.code(), Some(5));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("owns 1 name(s) (mine)") && err.contains("key export"),
        "{err}"
    );

    // Export (with a warning), replace, and import it back.
    let saved = tmp.path().join("saved.key");
    let o = run(&dir, &["key", "export", saved.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("SECRET key"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let o = run(&dir, &["key", "export", saved.to_str().unwrap()]);
    assert!(!o.status.success(), "export replaced a file");
    ok(&dir, &["keygen", "--force", "--abandon-names"]);
    let replaced = json(&dir, &["whoami", "--json"])["publisher"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(replaced, original);
    let o = run(&dir, &["key", "import", saved.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(5),
        "an import replaced a key without --force"
    );
    ok(&dir, &["key", "import", saved.to_str().unwrap(), "--force"]);
    assert_eq!(
        json(&dir, &["key", "show", "--json"])["publisher"],
        original.as_str()
    );
}

#[test]
fn publish_refuses_dependencies_that_cannot_resolve() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    let _node = NodeProc::start(&dir);
    let src = tmp.path().join("src");
    let lib = package(&src, "lib", "1.0.0", &[], "lib\n");
    ok(&dir, &["publish", lib.to_str().unwrap()]);
    for (name, deps, needle) in [
        ("app", [("lib", "^9")], "no version of `lib` satisfies ^9"),
        ("other", [("ghost", "^1")], "no version of `ghost` is known"),
    ] {
        let p = package(&src, name, "1.0.0", &deps, "x\n");
        let o = run(&dir, &["publish", p.to_str().unwrap(), "--json"]);
        assert_eq!(
            o.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(needle) && err.contains("--allow-unresolved"),
            "{err}"
        );
        let o = run(&dir, &["info", name]);
        assert_eq!(o.status.code(), Some(4), "a refused package was stored");
        ok(
            &dir,
            &["publish", p.to_str().unwrap(), "--allow-unresolved"],
        );
    }
}

#[test]
fn search_finds_prefixes_and_typos_suggests_names_and_marks_offline_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let (pub_dir, user_dir, publisher, _user) = publisher_and_user(tmp.path(), &[]);
    let p = package(&tmp.path().join("src"), "axum-service", "1.0.0", &[], "a\n");
    ok(&pub_dir, &["publish", p.to_str().unwrap()]);
    wait_known(&user_dir, "axum-service");
    let names = |q: &str| -> Vec<serde_json::Value> {
        json(&user_dir, &["search", q, "--json"])
            .as_array()
            .unwrap()
            .clone()
    };
    for q in ["ax", "axum-serv", "axum-servise"] {
        let hits = names(q);
        assert_eq!(
            hits.first().map(|h| h["name"].clone()),
            Some("axum-service".into()),
            "{q}"
        );
        assert_eq!(hits[0]["providers_online"], 1, "{hits:?}");
    }
    for cmd in [["info", "axum-servise"], ["install", "axum-servise"]] {
        let o = run_in(tmp.path(), &user_dir, &cmd);
        assert_eq!(
            o.status.code(),
            Some(4),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("did you mean axum-service?"), "{err}");
    }

    // Its only provider goes away: search says so.
    publisher.stop();
    wait_until("the user's node to see the publisher gone", || {
        json(&user_dir, &["status", "--json"])["connected_peers"] == 0
    });
    assert_eq!(names("axum")[0]["providers_online"], 0);
    let text = ok(&user_dir, &["search", "axum"]);
    assert!(text.contains("[offline: no provider connected]"), "{text}");
}

/// A CI-like publisher hands its package to a mirror with `--wait-replicas` and exits; users
/// then install from the mirror, and `pin` fetches what it pins.
#[test]
fn a_mirror_keeps_packages_installable_after_a_short_lived_publisher_exits() {
    let tmp = tempfile::tempdir().unwrap();
    let (m_dir, u_dir, p_dir) = (
        tmp.path().join("m"),
        tmp.path().join("u"),
        tmp.path().join("p"),
    );
    ok(&p_dir, &["keygen"]);
    let p_key = json(&p_dir, &["whoami", "--json"])["publisher"]
        .as_str()
        .unwrap()
        .to_owned();
    let mirror = NodeProc::start(&m_dir);
    let _user = NodeProc::start(&u_dir);
    let report = json(&m_dir, &["mirror", "--owner", &p_key, "--json"]);
    assert_eq!(report["added"], true, "{report}");
    assert_eq!(
        json(&m_dir, &["mirrors", "--json"])[0]["owner"],
        p_key.as_str()
    );

    let ci = NodeProc::start(&p_dir);
    ok(&p_dir, &["bootstrap", &mirror.addr()]);
    ok(&u_dir, &["bootstrap", &mirror.addr()]);
    let src = tmp.path().join("src");
    for name in ["tool", "extra"] {
        let p = package(&src, name, "1.0.0", &[], name);
        let published = json(
            &p_dir,
            &[
                "publish",
                p.to_str().unwrap(),
                "--wait-replicas",
                "1",
                "--wait-timeout",
                "60",
                "--json",
            ],
        );
        assert!(published["replicas"].as_u64().unwrap() >= 1, "{published}");
    }
    // The mirror holds both archives now; the publisher can go.
    ci.stop();
    wait_known(&u_dir, "extra");

    let project = tmp.path().join("project");
    std::fs::create_dir(&project).unwrap();
    let out: serde_json::Value =
        serde_json::from_str(&ok_in(&project, &u_dir, &["install", "tool", "--json"])).unwrap();
    let m_id = mirror.info()["peer_id"].as_str().unwrap().to_owned();
    assert_eq!(out["installed"][0]["sources"][0], m_id.as_str(), "{out}");

    // `pin` fetches the archive it pins.
    let before = json(&u_dir, &["status", "--json"])["archives"]
        .as_u64()
        .unwrap();
    let pins = json(&u_dir, &["pin", "extra", "--json"]);
    assert_eq!(pins[0]["name"], "extra", "{pins}");
    let after = json(&u_dir, &["status", "--json"])["archives"]
        .as_u64()
        .unwrap();
    assert_eq!(after, before + 1);

    // Unmirror removes the rule; a second time there is none.
    ok(&m_dir, &["unmirror", &p_key]);
    assert_eq!(run(&m_dir, &["unmirror", &p_key]).status.code(), Some(4));
}

#[test]
fn a_node_that_dies_mid_install_gets_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (pub_dir, user_dir, _publisher, mut user) = publisher_and_user(tmp.path(), SLOW);
    let big = big_package(&tmp.path().join("src"));
    ok(&pub_dir, &["publish", big.to_str().unwrap()]);
    wait_known(&user_dir, "big");
    let cli = bin()
        .current_dir(tmp.path())
        .arg("--data-dir")
        .arg(&user_dir)
        .args(["install", "big"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_downloading(&user_dir);
    user.child.kill().unwrap();
    let out = cli.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(
        err.contains("stopped answering in the middle of the install"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// A lock file comes with a repository: the install directory it names, or the default one
/// through a symlink, must not lead out of the project.
#[test]
fn a_lock_cannot_send_an_install_outside_the_project() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    let _node = NodeProc::start(&dir);
    let project = tmp.path().join("project");
    std::fs::create_dir(&project).unwrap();
    for to in ["../outside", "/tmp/elsewhere"] {
        std::fs::write(
            project.join("peerpack.lock"),
            format!("version = 2\nroots = [\"x\"]\nto = \"{to}\"\n"),
        )
        .unwrap();
        for cmd in [&["install"][..], &["verify"], &["remove", "x"]] {
            let o = run_in(&project, &dir, cmd);
            assert_eq!(o.status.code(), Some(5), "{cmd:?} {to}");
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains("outside this project") && err.contains("--to"),
                "{err}"
            );
        }
    }
    assert!(!tmp.path().join("outside").exists());
    // The default directory as a symlink out of the project.
    std::fs::remove_file(project.join("peerpack.lock")).unwrap();
    std::fs::create_dir(tmp.path().join("target")).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(tmp.path().join("target"), project.join("peerpack_packages"))
            .unwrap();
        let o = run_in(&project, &dir, &["install", "x"]);
        assert_eq!(o.status.code(), Some(5));
        assert!(String::from_utf8_lossy(&o.stderr).contains("outside this project"));
    }
}
