//! `peerpack node`: run a node in the foreground.

use anyhow::{Context, Result};
use peerpack_node::{Config, DataDir, Node};

use std::path::PathBuf;

use crate::NodeArgs;

/// Run until SIGINT or SIGTERM, then shut down cleanly.
pub async fn run(data_dir: DataDir, parts: NodeConfigParts) -> Result<()> {
    use std::io::IsTerminal;
    // libp2p-kad warns "no known peers" whenever a lone node's automatic bootstrap fires;
    // that is a normal state for a first node, not something to warn the operator about.
    let default_filter = "info,libp2p_kad=error,libp2p_swarm=warn,libp2p_gossipsub=warn";
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();

    let mut config = Config::new(data_dir.root());
    let default_file = data_dir.root().join(peerpack_node::config::DEFAULT_FILE);
    let file = match &parts.config {
        Some(path) => Some(peerpack_node::config::File::read(path)?),
        None if default_file.exists() => Some(peerpack_node::config::File::read(&default_file)?),
        None => None,
    };
    let file_listens = file.as_ref().is_some_and(|f| !f.network.listen.is_empty());
    if let Some(f) = file {
        config.apply_file(f);
    }
    if !parts.listen.is_empty() {
        config.listen = parts.listen;
    } else if !file_listens && parts.config.is_none() {
        // No address anywhere: pick a port once and keep it in DATA_DIR/config.toml.
        std::fs::create_dir_all(data_dir.root())
            .with_context(|| format!("cannot create {}", data_dir.root().display()))?;
        config.listen = vec![peerpack_node::config::stable_listen(
            &default_file,
            std::net::Ipv4Addr::UNSPECIFIED.into(),
        )];
    }
    config.bootstrap.extend(parts.bootstrap);
    config.external.extend(parts.external);
    if let Some(api) = parts.api {
        config.api = api;
    }
    if parts.policy.is_some() {
        config.policy = parts.policy;
    }
    if parts.no_catalogue_sync {
        config.catalogue_sync = false;
    }
    if parts.upload_limit.is_some() {
        config.upload_limit = parts.upload_limit;
    }
    if parts.api_public {
        config.api_public = true;
    }
    for c in parts.curators {
        if !config.curators.contains(&c) {
            config.curators.push(c);
        }
    }

    let mut node = Node::start(config).await.context("cannot start the node")?;
    println!("peerpack node {}", node.peer_id());
    println!("  data dir  {}", data_dir.root().display());
    println!("  api       {}", node.api_url());
    for a in node.listen_addrs() {
        println!("  listening {a}");
    }
    println!("  publisher {}", node.inner().publisher());
    println!("ready; stop with Ctrl-C");

    let failure = tokio::select! {
        () = wait_for_signal() => None,
        e = node.failed() => Some(e),
    };
    eprintln!("shutting down");
    node.shutdown().await;
    match failure {
        Some(e) => Err(e).context("the node stopped"),
        None => Ok(()),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub fn args_to_config(args: NodeArgs) -> Result<NodeConfigParts> {
    let parse = |v: &[String], what: &str| -> Result<Vec<peerpack_net::p2p::Multiaddr>> {
        v.iter()
            .map(|a| {
                a.parse().with_context(|| {
                    format!("{what} {a:?} is not a multiaddr (like /ip4/127.0.0.1/tcp/4001)")
                })
            })
            .collect()
    };
    let policy = match args.policy.as_deref() {
        None => None,
        Some("loopback-only") => Some(peerpack_net::AddressPolicy::LoopbackOnly),
        Some("private") => Some(peerpack_net::AddressPolicy::Private),
        Some("any") => Some(peerpack_net::AddressPolicy::Any),
        Some(other) => anyhow::bail!("--policy {other:?}: expected loopback-only, private or any"),
    };
    Ok(NodeConfigParts {
        listen: parse(&args.listen, "--listen")?,
        bootstrap: parse(&args.bootstrap, "--bootstrap")?,
        external: parse(&args.external, "--external")?,
        api: args.api_listen,
        config: args.config,
        policy,
        no_catalogue_sync: args.no_catalogue_sync,
        upload_limit: args.upload_limit,
        api_public: args.api_public,
        curators: args
            .curator
            .iter()
            .map(|k| {
                k.parse().with_context(|| {
                    format!("--curator {k:?} is not a key like ed25519:<64 hex digits>")
                })
            })
            .collect::<Result<_>>()?,
    })
}

/// Node flags, parsed; merged over the config file in [`run`].
pub struct NodeConfigParts {
    listen: Vec<peerpack_net::p2p::Multiaddr>,
    bootstrap: Vec<peerpack_net::p2p::Multiaddr>,
    external: Vec<peerpack_net::p2p::Multiaddr>,
    api: Option<std::net::SocketAddr>,
    config: Option<PathBuf>,
    policy: Option<peerpack_net::AddressPolicy>,
    no_catalogue_sync: bool,
    upload_limit: Option<u64>,
    api_public: bool,
    curators: Vec<peerpack_core::PublicKey>,
}
