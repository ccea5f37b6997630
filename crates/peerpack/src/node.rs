//! `peerpack node`: run a node in the foreground.

use anyhow::{Context, Result};
use peerpack_node::{Config, DataDir, Node};

use std::path::PathBuf;

use crate::NodeArgs;

/// Run until SIGINT or SIGTERM, then shut down cleanly.
pub async fn run(data_dir: DataDir, args: NodeArgs) -> Result<()> {
    // The log settings come from the configuration, and the configuration's own messages (a
    // port chosen for good) must reach the log: read it once without writing anything, start
    // the log with it, then read it for real.
    let preview = resolve(&data_dir, args_to_config(args.clone())?, false)?;
    let otlp = preview
        .otlp(|v| std::env::var(v).ok())
        .map_err(|e| anyhow::anyhow!("telemetry: {e}"))?;
    let tracer_provider = match &otlp {
        Some(o) => o.tracer_provider()?,
        None => None,
    };
    init_logging(&preview, tracer_provider.as_ref());
    let mut config = resolve(&data_dir, args_to_config(args)?, true)?;
    let telemetry = std::sync::Arc::new(match &otlp {
        Some(o) => peerpack_node::telemetry::Telemetry::try_with(|b| o.add_metrics(b))?,
        None => peerpack_node::telemetry::Telemetry::new(),
    });
    if let Some(o) = &otlp {
        tracing::info!(endpoint = ?o.endpoint, protocol = ?o.protocol, traces = o.traces, metrics = o.metrics, "exporting over OTLP");
    }
    config.telemetry = Some(telemetry.clone());

    let result = run_node(&data_dir, config).await;
    telemetry.shutdown();
    if let Some(p) = tracer_provider {
        let _ = p.force_flush();
        let _ = p.shutdown();
    }
    result
}

/// The log: text (colours on a terminal) or JSON lines on stderr, filtered by `RUST_LOG`, else
/// by `[telemetry] log_level` / `--log-level`; spans also go to `tracer` when OTLP is on.
fn init_logging(config: &Config, tracer: Option<&peerpack_node::telemetry::SdkTracerProvider>) {
    use std::io::IsTerminal;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // libp2p-kad warns "no known peers" whenever a lone node's automatic bootstrap fires;
    // that is a normal state for a first node, not something to warn the operator about.
    let quiet = "libp2p_kad=error,libp2p_swarm=warn,libp2p_gossipsub=warn";
    let log_filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{},{quiet}", config.log_level))
    });
    let log = match config.log_format {
        peerpack_node::config::LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .boxed(),
        peerpack_node::config::LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    // Spans go to the collector at info whatever the log shows: `--log-level warn` quiets the
    // log, not the traces.
    let otel = tracer.map(|p| {
        peerpack_node::otlp::span_layer(p).with_filter(tracing_subscriber::EnvFilter::new(
            peerpack_node::otlp::SPAN_FILTER,
        ))
    });
    tracing_subscriber::registry()
        .with(log.with_filter(log_filter))
        .with(otel)
        .init();
}

async fn run_node(data_dir: &DataDir, config: Config) -> Result<()> {
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
        log_format: args.log_format.as_deref().map(|f| match f {
            "json" => peerpack_node::config::LogFormat::Json,
            _ => peerpack_node::config::LogFormat::Text,
        }),
        log_level: args.log_level,
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

/// The node's configuration: defaults, then the config file (`--config FILE`, else
/// `DATA_DIR/config.toml` when it exists), then `PEERPACK_*` environment variables, then the
/// flags in `parts`. With `choose_port`, a node given no listen address anywhere picks a port
/// once and keeps it in `DATA_DIR/config.toml`; without (`peerpack config`), nothing is
/// written.
pub fn resolve(data_dir: &DataDir, parts: NodeConfigParts, choose_port: bool) -> Result<Config> {
    use peerpack_node::config::{File, Origin};
    let mut config = Config::new(data_dir.root());
    let default_file = data_dir.root().join(peerpack_node::config::DEFAULT_FILE);
    let path = match &parts.config {
        Some(path) => Some(path.clone()),
        None if default_file.exists() => Some(default_file.clone()),
        None => None,
    };
    if let Some(path) = &path {
        config.apply_file(File::read(path)?, path)?;
    }
    config.apply(File::from_env(std::env::vars())?, |key| {
        Origin::Env(peerpack_node::config::env_var(key))
    })?;
    let flag_listens = !parts.listen.is_empty();
    let (flags, flag_of) = parts.into_layer();
    config.apply(flags, |key| Origin::Flag(flag_of(key).to_owned()))?;
    // No address anywhere: pick a port once and keep it in DATA_DIR/config.toml.
    if !config.origins.contains_key("network.listen")
        && !flag_listens
        && choose_port
        && parts_config_is_default(path.as_deref(), &default_file)
    {
        std::fs::create_dir_all(data_dir.root())
            .with_context(|| format!("cannot create {}", data_dir.root().display()))?;
        let chosen = peerpack_node::config::stable_listen(
            &default_file,
            std::net::Ipv4Addr::UNSPECIFIED.into(),
        );
        if chosen != peerpack_node::config::default_listen() {
            config
                .origins
                .insert("network.listen", vec![Origin::Chosen(default_file)]);
        }
        config.listen = vec![chosen];
    }
    Ok(config)
}

/// Whether the config file in use is the default one (or none): only then may a chosen port
/// be written into it.
fn parts_config_is_default(path: Option<&std::path::Path>, default_file: &std::path::Path) -> bool {
    path.is_none_or(|p| p == default_file)
}

/// Node flags, parsed; merged over the config file in [`resolve`].
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
    log_format: Option<peerpack_node::config::LogFormat>,
    log_level: Option<String>,
}

impl NodeConfigParts {
    /// The flags as a layer of settings, and the flag that sets each key.
    fn into_layer(self) -> (peerpack_node::config::File, fn(&str) -> &'static str) {
        let mut f = peerpack_node::config::File::default();
        f.network.listen = self.listen;
        f.network.bootstrap = self.bootstrap;
        f.network.external = self.external;
        f.network.policy = self.policy;
        f.network.catalogue_sync = self.no_catalogue_sync.then_some(false);
        f.api.listen = self.api;
        f.api.public = self.api_public.then_some(true);
        f.transfer.upload_limit = self.upload_limit;
        f.trust.curators = self.curators;
        f.telemetry.log_format = self.log_format;
        f.telemetry.log_level = self.log_level;
        fn flag_of(key: &str) -> &'static str {
            match key {
                "network.listen" => "--listen",
                "network.bootstrap" => "--bootstrap",
                "network.external" => "--external",
                "network.policy" => "--policy",
                "network.catalogue_sync" => "--no-catalogue-sync",
                "api.listen" => "--api-listen",
                "api.public" => "--api-public",
                "transfer.upload_limit" => "--upload-limit",
                "trust.curators" => "--curator",
                "telemetry.log_format" => "--log-format",
                "telemetry.log_level" => "--log-level",
                _ => "(a flag)",
            }
        }
        (f, flag_of)
    }
}
