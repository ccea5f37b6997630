//! Networks of real nodes in this process, over TCP on 127.0.0.1, shared by the benchmarks
//! that need many nodes (`dht`, `propagation`, `memory`, `churn`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use peerpack_node::{Config, Node};

use crate::corpus::Rng;

/// Start `n` nodes with data directories under `work`, each bootstrapping to node 0 and to a
/// random earlier node, as `peerpack demo` does. `configure` adjusts each node's config
/// before it starts. Answers the nodes and the time it took.
pub async fn start(
    n: usize,
    work: &Path,
    rng: &mut Rng,
    configure: impl Fn(&mut Config),
) -> Result<(Vec<Node>, Duration)> {
    let t = Instant::now();
    let mut nodes: Vec<Node> = Vec::with_capacity(n);
    for i in 0..n {
        let mut config = Config::loopback(work.join(format!("n{n}-{i}")));
        configure(&mut config);
        if i > 0 {
            config.bootstrap.push(nodes[0].listen_addrs()[0].clone());
            if i > 1 {
                let other = 1 + rng.below(i - 1);
                config
                    .bootstrap
                    .push(nodes[other].listen_addrs()[0].clone());
            }
        }
        nodes.push(Node::start(config).await?);
    }
    Ok((nodes, t.elapsed()))
}

/// Peers connected per node now: min, median, max.
pub async fn connections(nodes: &[Node]) -> Result<(usize, usize, usize)> {
    let mut v = Vec::with_capacity(nodes.len());
    for node in nodes {
        v.push(node.inner().status().await?.connected_peers);
    }
    Ok(spread(v))
}

/// Min, median and max of `v`.
pub fn spread(mut v: Vec<usize>) -> (usize, usize, usize) {
    if v.is_empty() {
        return (0, 0, 0);
    }
    v.sort_unstable();
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// Resident memory of this process, MiB (0 if unknown).
pub fn rss_mib() -> f64 {
    crate::restart::status_kib(std::process::id(), "VmRSS:").unwrap_or(0.0) / 1024.0
}

/// Open file descriptors of this process.
pub fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// With `RUST_LOG` set, log the nodes' work to stderr at those levels (to see where a
/// network's time goes); otherwise nothing is logged.
pub fn log_from_env() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
}
