//! What the process tests share: running the real `peerpack` binary, and a node process.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(60);

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_peerpack"));
    c.env_remove("PEERPACK_DATA_DIR").env_remove("PEERPACK_API");
    c
}

pub fn run(dir: &Path, args: &[&str]) -> Output {
    bin()
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

pub fn ok(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, args);
    assert!(
        o.status.success(),
        "peerpack {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

pub fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(dir, args)).unwrap()
}

pub struct NodeProc {
    pub child: Child,
    pub dir: PathBuf,
}

impl NodeProc {
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    pub fn start_with(dir: &Path, extra: &[&str]) -> Self {
        Self::start_on(dir, "/ip4/127.0.0.1/tcp/0", extra)
    }

    /// A node started by `cmd` (a `peerpack node` command) on `dir`.
    pub fn spawn(mut cmd: Command, dir: &Path) -> Self {
        let child = cmd.spawn().unwrap();
        let start = Instant::now();
        while !dir.join("node.json").exists() {
            assert!(
                start.elapsed() < TIMEOUT,
                "node in {} never wrote node.json",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            dir: dir.to_owned(),
        }
    }

    /// A node listening on `listen`.
    pub fn start_on(dir: &Path, listen: &str, extra: &[&str]) -> Self {
        let mut cmd = bin();
        cmd.arg("node")
            .arg("--data-dir")
            .arg(dir)
            .args(["--listen", listen])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Self::spawn(cmd, dir)
    }

    pub fn info(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.join("node.json")).unwrap()).unwrap()
    }

    pub fn addr(&self) -> String {
        self.info()["listen_addrs"][0].as_str().unwrap().to_owned()
    }

    /// SIGTERM, then wait: a clean exit removes node.json.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "node exited with {status}");
                break;
            }
            assert!(start.elapsed() < TIMEOUT, "node did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            !self.dir.join("node.json").exists(),
            "node.json left behind after a clean exit"
        );
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `peerpack` run in `cwd` against the node in `dir`.
pub fn run_in(cwd: &Path, dir: &Path, args: &[&str]) -> Output {
    bin()
        .current_dir(cwd)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

pub fn ok_in(cwd: &Path, dir: &Path, args: &[&str]) -> String {
    let o = run_in(cwd, dir, args);
    assert!(
        o.status.success(),
        "peerpack {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Write a package directory `NAME-VERSION` under `root` with the given dependencies and one
/// file, `template.txt`, holding `body`; answer its path.
pub fn package(
    root: &Path,
    name: &str,
    version: &str,
    deps: &[(&str, &str)],
    body: &str,
) -> PathBuf {
    let dir = root.join(format!("{name}-{version}"));
    std::fs::create_dir_all(dir.join("files")).unwrap();
    let deps: String = deps
        .iter()
        .map(|(n, r)| format!("{n} = \"{r}\"\n"))
        .collect();
    std::fs::write(
        dir.join("peerpack.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"{version}\"\ndescription = \"{name} for tests\"\nlicense = \"MIT\"\nauthors = [\"Test <t@example.org>\"]\n\n[dependencies]\n{deps}"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("files/template.txt"), body).unwrap();
    std::fs::write(dir.join("files/notes.md"), format!("# {name} {version}\n")).unwrap();
    dir
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
