//! `TestNet`: N real nodes in one process, on 127.0.0.1 port 0, each with its own temporary
//! data directory. Nodes dial only loopback (their policy is derived from their loopback
//! listen address).

#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peerpack_node::queries::{Search, SearchHit};
use peerpack_node::{Config, Context as Inner, Node};

pub struct TestNet {
    pub nodes: Vec<Option<Node>>,
    dirs: Vec<tempfile::TempDir>,
}

/// Generous: the machine is shared and debug builds are slow.
pub const TIMEOUT: Duration = Duration::from_secs(60);

pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/packs")
        .join(name)
        .canonicalize()
        .unwrap()
}

pub fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/packs"))
            .unwrap()
            .map(|e| e.unwrap().path().canonicalize().unwrap())
            .collect();
    // Dependencies first: a package whose dependencies cannot be resolved is refused.
    v.sort_by_cached_key(|p| {
        let deps = peerpack_core::Manifest::from_dir(p).map_or(0, |m| m.dependencies.len());
        (deps, p.clone())
    });
    v
}

impl TestNet {
    /// `n` nodes, not connected to each other.
    pub async fn new(n: usize) -> Self {
        let mut net = Self {
            nodes: Vec::new(),
            dirs: Vec::new(),
        };
        for _ in 0..n {
            net.add().await;
        }
        net
    }

    /// Start one more node; returns its index.
    pub async fn add(&mut self) -> usize {
        self.add_with(|_| {}).await
    }

    /// Start one more node with its configuration adjusted by `f`; returns its index.
    pub async fn add_with(&mut self, f: impl FnOnce(&mut Config)) -> usize {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::loopback(dir.path());
        f(&mut config);
        let node = Node::start(config).await.unwrap();
        self.dirs.push(dir);
        self.nodes.push(Some(node));
        self.nodes.len() - 1
    }

    /// Start stopped node `i` again on its data directory.
    pub async fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} is running");
        let node = Node::start(Config::loopback(self.dirs[i].path()))
            .await
            .unwrap();
        self.nodes[i] = Some(node);
    }

    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("node was stopped")
    }

    pub fn inner(&self, i: usize) -> &Arc<Inner> {
        self.node(i).inner()
    }

    pub fn data_dir(&self, i: usize) -> &Path {
        self.dirs[i].path()
    }

    /// `a` dials `b`.
    pub async fn connect(&self, a: usize, b: usize) {
        let addr = self.node(b).listen_addrs()[0].to_string();
        self.inner(a).bootstrap(&[addr]).await.unwrap();
    }

    /// Stop node `i` (its data directory stays).
    pub async fn stop(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].take() {
            node.shutdown().await;
        }
    }

    pub async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i).await;
        }
    }
}

/// Poll `f` until it returns `Some`, or panic after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn search(inner: &Arc<Inner>, q: &str) -> Vec<SearchHit> {
    inner
        .search(Search {
            q: q.into(),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Wait until `inner`'s search for `q` finds a package named `name`.
pub async fn wait_searchable(inner: &Arc<Inner>, q: &str, name: &str) {
    wait_for(
        &format!("{name} to be searchable with {q:?}"),
        TIMEOUT,
        || async {
            search(inner, q)
                .await
                .iter()
                .any(|h| h.name == name)
                .then_some(())
        },
    )
    .await
}

/// A libp2p peer running peerpack's network layer with no node behind it: it validates nothing
/// and can send anything. It dials node `target` of `net`.
pub struct Bare {
    pub handle: peerpack_net::NetHandle,
}

pub async fn bare_peer(
    key: peerpack_net::p2p::identity::Keypair,
    net: &TestNet,
    target: usize,
) -> Bare {
    let listen = vec![peerpack_node::config::loopback_listen()];
    let spawned = peerpack_net::spawn(peerpack_net::Config::new(key, listen))
        .await
        .unwrap();
    let mut events = spawned.events;
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let target = net.node(target).listen_addrs()[0].clone();
    spawned.handle.dial(target).await.unwrap();
    Bare {
        handle: spawned.handle,
    }
}

/// A bare peer that dials node `target` and keeps every gossip message it hears (its data),
/// validating nothing and forwarding nothing.
pub async fn listener(
    net: &TestNet,
    target: usize,
) -> (
    peerpack_net::NetHandle,
    std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
) {
    let key = peerpack_net::p2p::identity::Keypair::generate_ed25519();
    let listen = vec![peerpack_node::config::loopback_listen()];
    let spawned = peerpack_net::spawn(peerpack_net::Config::new(key, listen))
        .await
        .unwrap();
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (h, mut events) = (heard.clone(), spawned.events);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let peerpack_net::Event::Announcement { data, .. } = event {
                h.lock().unwrap().push(data);
            }
        }
    });
    spawned
        .handle
        .dial(net.node(target).listen_addrs()[0].clone())
        .await
        .unwrap();
    (spawned.handle, heard)
}

/// Publish `dir` whether or not its dependencies resolve: for tests about how one package
/// travels, which publish it without what it depends on.
pub async fn publish_alone(
    inner: &Arc<Inner>,
    dir: PathBuf,
) -> Result<peerpack_node::publish::Published, peerpack_node::error::Error> {
    let options = peerpack_node::publish::PublishOptions {
        allow_unresolved: true,
        ..Default::default()
    };
    peerpack_node::publish::publish_with(inner, dir, options).await
}
