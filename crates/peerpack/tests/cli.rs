//! The `peerpack` binary as a user runs it: keygen, pack, help and errors.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn peerpack(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peerpack"))
        .args(args)
        .current_dir(cwd)
        .env_remove("PEERPACK_DATA_DIR")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/packs")
}

#[test]
fn help_and_version_explain_themselves() {
    let tmp = tempfile::tempdir().unwrap();
    let o = peerpack(&["--help"], tmp.path());
    assert!(o.status.success());
    let text = stdout(&o);
    for word in ["keygen", "pack", "--data-dir", "PEERPACK_DATA_DIR"] {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
    let o = peerpack(&["pack", "--help"], tmp.path());
    assert!(stdout(&o).contains("content id"), "{}", stdout(&o));
    let o = peerpack(&["--version"], tmp.path());
    assert_eq!(
        stdout(&o).trim(),
        format!("peerpack {}", env!("CARGO_PKG_VERSION"))
    );
    let o = peerpack(&["frobnicate"], tmp.path());
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn keygen_creates_a_private_key_and_never_overwrites_it_silently() {
    let tmp = tempfile::tempdir().unwrap();
    // --data-dir accepted after the subcommand...
    let o = peerpack(&["keygen", "--data-dir", "d"], tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let key = tmp.path().join("d/publisher.key");
    let first = fs::read(&key).unwrap();
    assert!(stdout(&o).contains("ed25519:"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // ...and before it.
    let o = peerpack(&["--data-dir", "d", "keygen"], tmp.path());
    assert_eq!(o.status.code(), Some(5));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: ") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one-line reason: {err}");
    assert_eq!(fs::read(&key).unwrap(), first, "key untouched");

    let o = peerpack(&["--data-dir", "d", "keygen", "--force"], tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(fs::read(&key).unwrap(), first);
    // The old key is kept, privately.
    let kept: Vec<_> = fs::read_dir(tmp.path().join("d"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("publisher.key.replaced-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(fs::read(&kept[0]).unwrap(), first);
    assert!(stdout(&o).contains("the old key is kept in"));
}

#[test]
fn keygen_honours_the_environment_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_peerpack"))
        .arg("keygen")
        .current_dir(tmp.path())
        .env("PEERPACK_DATA_DIR", tmp.path().join("from-env"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(tmp.path().join("from-env/publisher.key").is_file());
}

fn pack_json(dir: &Path, out: &Path, cwd: &Path) -> serde_json::Value {
    let o = peerpack(
        &[
            "pack",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
        cwd,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn every_example_pack_is_valid_and_packs_deterministically() {
    let tmp = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for entry in fs::read_dir(examples()).unwrap() {
        let dir = entry.unwrap().path();
        let a = pack_json(&dir, &tmp.path().join("a.tar.zst"), tmp.path());
        let b = pack_json(&dir, &tmp.path().join("b.tar.zst"), tmp.path());
        assert_eq!(a["content_id"], b["content_id"]);
        assert_eq!(
            fs::read(tmp.path().join("a.tar.zst")).unwrap(),
            fs::read(tmp.path().join("b.tar.zst")).unwrap()
        );
        let bytes = fs::read(tmp.path().join("a.tar.zst")).unwrap();
        assert_eq!(a["archive_size"], bytes.len());
        assert_eq!(
            a["content_id"],
            peerpack_core::ContentId::of(&bytes).to_string()
        );
        assert!(a["entries"].as_u64().unwrap() >= 4, "{a}");
        names.push(a["name"].as_str().unwrap().to_owned());
    }
    assert!(names.len() >= 6, "{names:?}");
}

/// Copies `src` to `dst`, creating entries in reverse order.
fn copy_reversed(src: &Path, dst: &Path) {
    let mut entries: Vec<_> = fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries.reverse();
    fs::create_dir_all(dst).unwrap();
    for p in entries {
        let target = dst.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_reversed(&p, &target);
        } else {
            fs::copy(&p, &target).unwrap();
        }
    }
}

#[test]
fn a_copy_with_other_mtimes_and_order_packs_to_the_same_id() {
    let tmp = tempfile::tempdir().unwrap();
    let src = examples().join("dockerfile-multistage");
    let copy = tmp.path().join("copy");
    copy_reversed(&src, &copy);
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(86_400);
    fs::File::options()
        .write(true)
        .open(copy.join("README.md"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let a = pack_json(&src, &tmp.path().join("a.tar.zst"), tmp.path());
    let b = pack_json(&copy, &tmp.path().join("b.tar.zst"), tmp.path());
    assert_eq!(a["content_id"], b["content_id"]);
}

#[test]
fn pack_defaults_to_name_and_version_in_the_current_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let o = peerpack(
        &["pack", examples().join("rust-cli").to_str().unwrap()],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("blake3:"), "{text}");
    let archives: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(archives.len(), 1);
    let name = archives[0].to_str().unwrap();
    assert!(
        name.starts_with("rust-cli-") && name.ends_with(".tar.zst"),
        "{name}"
    );
}

/// `pack .` run again and again inside the package gives one content id, the one a pack from
/// outside gives: neither its own archive, nor a secret, nor a dependency tree gets in.
#[test]
fn pack_dot_inside_the_package_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("pkg");
    copy_reversed(&examples().join("rust-cli"), &pkg);
    let outside = pack_json(&pkg, &tmp.path().join("outside.tar.zst"), tmp.path());
    fs::write(pkg.join(".env"), "TOKEN=secret\n").unwrap();
    fs::create_dir_all(pkg.join("node_modules/x")).unwrap();
    fs::write(pkg.join("node_modules/x/index.js"), "x").unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let o = peerpack(&["pack", ".", "--json"], &pkg);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).is_empty(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        ids.push(v["content_id"].clone());
    }
    assert!(
        ids.iter().all(|id| *id == outside["content_id"]),
        "{ids:?} vs {outside}"
    );

    // --list shows what ships, and nothing of what does not.
    let o = peerpack(&["pack", ".", "--list"], &pkg);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("peerpack.toml"), "{text}");
    for absent in [".env", "node_modules", ".tar.zst"] {
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with(absent) || l.contains(&format!("{absent}  "))),
            "{absent} listed:\n{text}"
        );
    }
    let o = peerpack(&["pack", ".", "--list", "--json"], &pkg);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let paths: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"peerpack.toml"), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.starts_with(".env")
            || p.starts_with("node_modules")
            || p.ends_with(".tar.zst")),
        "{paths:?}"
    );

    // An archive written inside the package under a name that ships is pointed out.
    fs::create_dir(pkg.join("build")).unwrap();
    let o = peerpack(&["pack", ".", "--out", "build/out.bin"], &pkg);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("next pack"), "{}", stderr(&o));
}

/// `init` writes a manifest that packs as it is, names the package after its directory, and
/// never replaces a manifest.
#[test]
fn init_writes_a_manifest_that_packs_and_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    let o = peerpack(
        &["init", "My Pack_2", "--author", "Ada <ada@example.org>"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = tmp.path().join("My Pack_2");
    let text = fs::read_to_string(dir.join("peerpack.toml")).unwrap();
    assert!(text.contains("name = \"my-pack-2\""), "{text}");
    assert!(text.contains("Ada <ada@example.org>"), "{text}");
    assert!(text.contains("# "), "the manifest explains itself:\n{text}");
    fs::write(dir.join("template.txt"), "hello {{name}}\n").unwrap();
    let v = pack_json(&dir, &tmp.path().join("out.tar.zst"), tmp.path());
    assert_eq!(v["name"], "my-pack-2");
    assert_eq!(v["version"], "0.1.0");

    let o = peerpack(&["init", "My Pack_2", "--name", "other"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(dir.join("peerpack.toml")).unwrap(), text);

    // A name that is not one is refused and nothing is left behind.
    let o = peerpack(&["init", "x", "--name", "Bad Name"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not a package name"), "{}", stderr(&o));
    assert!(!tmp.path().join("x/peerpack.toml").exists());
}

/// No node at the address given: exit 6, and with `--json` a JSON error a script can read.
#[test]
fn an_unreachable_node_exits_6_and_says_so_in_json() {
    let tmp = tempfile::tempdir().unwrap();
    let o = peerpack(&["status", "--api", "http://127.0.0.1:1"], tmp.path());
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("error: cannot reach the node"),
        "{}",
        stderr(&o)
    );
    // Global flags go before or after the subcommand; the JSON error is on stdout, the text on
    // stderr.
    for args in [
        &["status", "--api", "http://127.0.0.1:1", "--json"][..],
        &["--api", "http://127.0.0.1:1", "--json", "status"][..],
    ] {
        let o = peerpack(args, tmp.path());
        assert_eq!(o.status.code(), Some(6));
        let err: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(err["error"]["code"], "unreachable", "{err}");
        assert!(
            stderr(&o).starts_with("error: cannot reach the node"),
            "{}",
            stderr(&o)
        );
    }
    // `node` takes --api-listen; --api there is a mistake worth naming.
    let o = peerpack(&["node", "--api", "127.0.0.1:0"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--api-listen"), "{}", stderr(&o));
}

/// `whoami` shows the key `keygen` made; without one it says how to make one (exit 4).
#[test]
fn whoami_shows_the_publisher_key() {
    let tmp = tempfile::tempdir().unwrap();
    let o = peerpack(&["--data-dir", "d", "whoami"], tmp.path());
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("peerpack keygen"), "{}", stderr(&o));
    let o = peerpack(&["--data-dir", "d", "keygen"], tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let made = stdout(&o);
    let o = peerpack(&["--data-dir", "d", "whoami", "--json"], tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let key = v["publisher"].as_str().unwrap();
    assert!(
        key.starts_with("ed25519:") && made.contains(key),
        "{made} / {v}"
    );
}

/// Out-of-range options are usage errors (exit 2), not silently clamped.
#[test]
fn out_of_range_options_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["search", "x", "--limit", "0"][..],
        &["search", "x", "--limit", "1001"],
        &["search", "x", "--min-reputation", "1.5"],
        &["peers", "--min-reputation", "-1"],
    ] {
        let o = peerpack(args, tmp.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn a_bad_manifest_is_named_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("pkg");
    fs::create_dir(&pkg).unwrap();
    fs::write(
        pkg.join("peerpack.toml"),
        "[package]\nname = \"demo\"\nversion = \"one\"\ndescription = \"d\"\nlicense = \"MIT\"\nauthors = [\"a\"]\n",
    )
    .unwrap();
    let o = peerpack(&["pack", "pkg"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("pkg/peerpack.toml")
            && err.contains("package.version")
            && err.contains("\"one\""),
        "{err}"
    );
    let left: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["pkg"], "no archive or temp file left behind");

    let o = peerpack(&["pack", "missing-dir"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("missing-dir/peerpack.toml"),
        "{}",
        stderr(&o)
    );
}

/// Every subcommand's `--help` ends with an example; completions and the man page are
/// generated from the same definitions.
#[test]
fn every_command_shows_an_example_and_completions_and_man_page_exist() {
    let tmp = tempfile::tempdir().unwrap();
    let help = stdout(&peerpack(&["--help"], tmp.path()));
    let commands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A description that wraps goes on under deeper indentation.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() > 30, "{commands:?}");
    for c in &commands {
        let o = peerpack(&[c, "--help"], tmp.path());
        assert!(o.status.success(), "{c} --help");
        let text = stdout(&o);
        assert!(
            text.contains("Example:\n  peerpack") || text.contains("Examples:\n  peerpack"),
            "`peerpack {c} --help` shows no example:\n{text}"
        );
    }
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout(&peerpack(&["completions", shell], tmp.path()));
        assert!(
            script.contains("install") && script.contains("mirror"),
            "{shell}"
        );
    }
    let man = stdout(&peerpack(&["man"], tmp.path()));
    assert!(man.contains(".TH peerpack 1"), "{man}");
    assert!(man.contains("verify"), "{man}");
}

#[test]
fn config_shows_each_value_and_its_source_and_a_broken_file_stops_the_node_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let file = dir.path().join("config.toml");
    fs::write(&file, "[cache]\nquota = 5\n[transfer]\nupload_limit = 10\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_peerpack"))
        .args([
            "--data-dir",
            data,
            "--json",
            "config",
            "--upload-limit",
            "99",
        ])
        .env("PEERPACK_CACHE_QUOTA", "6")
        .env("PEERPACK_DHT_REPUBLISH_INTERVAL", "120")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["cache.quota"]["value"], "6");
    assert_eq!(
        v["cache.quota"]["source"],
        "environment PEERPACK_CACHE_QUOTA"
    );
    assert_eq!(v["transfer.upload_limit"]["value"], "99");
    assert_eq!(v["transfer.upload_limit"]["source"], "flag --upload-limit");
    assert_eq!(v["dht.republish_interval"]["value"], "120");
    assert_eq!(v["api.listen"]["source"], "default");
    assert_eq!(
        v["network.listen"]["source"], "default",
        "`config` chooses no port and writes nothing"
    );
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "[cache]\nquota = 5\n[transfer]\nupload_limit = 10\n"
    );

    // A truncated file, a misspelt key, an unknown variable: each stops `node` and `config`
    // at once with exit 3, naming the file or the variable.
    for (text, what) in [
        ("[cache]\nquota = 5\n[netw", "unclosed table"),
        ("[cache]\nqouta = 5\n", "qouta"),
        ("[transfer]\nmin_provider_score = 7\n", "min_provider_score"),
    ] {
        fs::write(&file, text).unwrap();
        for cmd in [
            &["node", "--listen", "/ip4/127.0.0.1/tcp/0"][..],
            &["config"],
        ] {
            let o = Command::new(env!("CARGO_BIN_EXE_peerpack"))
                .args(["--data-dir", data])
                .args(cmd)
                .output()
                .unwrap();
            assert_eq!(
                o.status.code(),
                Some(3),
                "{cmd:?} with {text:?}: {}",
                stderr(&o)
            );
            let err = stderr(&o);
            assert!(err.contains(what), "{err}");
            if what != "min_provider_score" {
                assert!(err.contains(&file.display().to_string()), "{err}");
            }
        }
    }
    assert!(!dir.path().join("node.json").exists(), "no node started");
    fs::remove_file(&file).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_peerpack"))
        .args(["--data-dir", data, "config"])
        .env("PEERPACK_NETWORK_LISTN", "/ip4/127.0.0.1/tcp/1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("PEERPACK_NETWORK_LISTN"),
        "{}",
        stderr(&o)
    );
}
