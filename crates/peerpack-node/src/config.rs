//! Node configuration.
//!
//! Precedence: built-in defaults < the config file (`--config FILE`, else `DATA_DIR/config.toml`
//! if present) < environment variables (`PEERPACK_<SECTION>_<KEY>`, see [`File::from_env`]) <
//! command-line flags. Each layer is a [`File`] applied with [`Config::apply`], which records
//! where every value came from ([`Config::origins`], shown by `peerpack config`). Lists add up
//! across layers (bootstrap peers, external addresses, curators), except `listen`, which the
//! highest layer that names one decides. A node with no listen address anywhere picks a free
//! port once and writes it to `DATA_DIR/config.toml` ([`stable_listen`]), so that its peers
//! find it at the same address after a restart. Example:
//!
//! ```toml
//! [network]
//! listen = ["/ip4/0.0.0.0/tcp/4001"]
//! bootstrap = ["/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW..."]
//! policy = "any"          # "loopback-only", "private" or "any"; absent: derived from listen
//! external = ["/ip4/203.0.113.9/tcp/4001"]   # addresses to advertise (NAT)
//! catalogue_sync = true   # false: a light node that keeps only what it sees or looks up
//! query_timeout = 30      # seconds a DHT query may take
//! idle_timeout = 300      # seconds before an idle connection is closed
//! max_peers = 48          # peers kept connected; past it the least used are let go
//!
//! [api]
//! listen = "127.0.0.1:7878"
//!
//! [transfer]
//! upload_limit = 10485760     # bytes per second served to peers; absent: unlimited
//! min_provider_score = 0.2    # providers scoring below this are not asked
//!
//! [cache]
//! quota = 1073741824          # bytes of archives `gc` keeps besides published, installed, pinned
//!
//! [install]
//! link = "auto"               # reinstalls from the unpacked cache: "auto" (reflink, else
//!                             # copy), "copy", "hardlink" (read-only files) or "extract" (no cache)
//!
//! [dht]
//! republish_interval = 21600  # seconds between republishing this node's records
//! reprovide_interval = 43200  # seconds between re-announcing the archives it holds
//! max_provider_records = 100000  # provider records of other peers kept at most
//!
//! [telemetry]
//! otlp_endpoint = "http://127.0.0.1:4318"   # absent: OTLP only if OTEL_EXPORTER_OTLP_* asks
//! otlp_protocol = "http/protobuf"           # or "grpc" (port 4317)
//! traces = true
//! metrics = true
//! metric_interval = 10
//! log_format = "text"                       # or "json"
//! log_level = "info"                        # RUST_LOG overrides it
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use peerpack_net::AddressPolicy;
use peerpack_net::p2p::Multiaddr;
use serde::Deserialize;

/// The whole node configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the node keeps its state.
    pub data_dir: PathBuf,
    /// libp2p listen addresses. Default `/ip4/0.0.0.0/tcp/0`.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start (each with `/p2p/<id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// Address policy; `None` derives it from `listen`.
    pub policy: Option<AddressPolicy>,
    /// HTTP API address. Default `127.0.0.1:0`.
    pub api: SocketAddr,
    /// Addresses to advertise besides the listen addresses (a public address behind NAT).
    pub external: Vec<Multiaddr>,
    /// Pull whole catalogues from peers (default). A node with `false` keeps only what it
    /// receives live or looks up (a light node).
    pub catalogue_sync: bool,
    /// Bytes per second this node serves to peers, all together; `None` is unlimited.
    pub upload_limit: Option<u64>,
    /// Providers scoring below this are not asked for archives. Default 0.2.
    pub min_provider_score: f64,
    /// Bytes of archives `gc` may keep besides those published, installed or pinned.
    /// Default 1 GiB.
    pub cache_quota: u64,
    /// How an install places the files of an archive the node keeps unpacked. Default
    /// `auto`.
    pub install_link: peerpack_store::unpacked::LinkMode,
    /// Curator keys whose lists decide who owns a name (after owners pinned with `trust`),
    /// highest priority first. Empty: no curator decides anything.
    pub curators: Vec<peerpack_core::PublicKey>,
    /// Allow the API on a non-loopback address (it is refused otherwise).
    pub api_public: bool,
    /// How often the node republishes its records and re-announces its archives.
    pub republish: crate::republish::Intervals,
    /// Most provider records of other peers the node keeps for the DHT. Default 100,000.
    pub max_provider_records: u64,
    /// How long a DHT query may take. Default 30 s.
    pub query_timeout: std::time::Duration,
    /// How long an idle connection stays open. Default 300 s.
    pub idle_timeout: std::time::Duration,
    /// Peers kept connected (see `peerpack_net::Config::max_peers`). Default 48.
    pub max_peers: usize,
    /// A peer used this recently is not disconnected for `max_peers`. Default 10 s; not a
    /// file setting (tests shorten it).
    pub trim_grace: std::time::Duration,
    /// Where each setting's value came from, by key (`network.listen`, ...); a key absent
    /// here has its default.
    pub origins: std::collections::BTreeMap<&'static str, Vec<Origin>>,
    /// OTLP export: the collector's base URL (`None`: only if `OTEL_EXPORTER_OTLP_*` asks).
    pub otlp_endpoint: Option<String>,
    /// OTLP transport.
    pub otlp_protocol: crate::otlp::Protocol,
    /// Export spans over OTLP.
    pub otlp_traces: bool,
    /// Export metrics over OTLP.
    pub otlp_metrics: bool,
    /// Time between metric exports.
    pub metric_interval: std::time::Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (`RUST_LOG` overrides it).
    pub log_level: String,
    /// The node's metrics (and their exporters); `None`: a provider of its own, read by
    /// `/metrics` only.
    pub telemetry: Option<std::sync::Arc<crate::telemetry::Telemetry>>,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A config file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
    /// Chosen by the node's first start and kept in this file ([`stable_listen`]).
    Chosen(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "file {}", p.display()),
            Self::Env(v) => write!(f, "environment {v}"),
            Self::Flag(flag) => write!(f, "flag {flag}"),
            Self::Chosen(p) => write!(f, "chosen at the first start, kept in {}", p.display()),
        }
    }
}

/// Every setting, as `section.key`, in the order `peerpack config` shows them.
pub const KEYS: &[&str] = &[
    "network.listen",
    "network.bootstrap",
    "network.policy",
    "network.external",
    "network.catalogue_sync",
    "network.query_timeout",
    "network.idle_timeout",
    "network.max_peers",
    "api.listen",
    "api.public",
    "transfer.upload_limit",
    "transfer.min_provider_score",
    "cache.quota",
    "install.link",
    "trust.curators",
    "dht.republish_interval",
    "dht.reprovide_interval",
    "dht.max_provider_records",
    "telemetry.otlp_endpoint",
    "telemetry.otlp_protocol",
    "telemetry.traces",
    "telemetry.metrics",
    "telemetry.metric_interval",
    "telemetry.log_format",
    "telemetry.log_level",
];

/// Environment variables of the client commands, which share the prefix of node settings.
const CLIENT_VARS: &[&str] = &["PEERPACK_API", "PEERPACK_API_TOKEN", "PEERPACK_DATA_DIR"];

/// Settings that hold lists (environment variables give them comma-separated).
const LIST_KEYS: &[&str] = &[
    "network.listen",
    "network.bootstrap",
    "network.external",
    "trust.curators",
];

/// The environment variable of a setting: `PEERPACK_<SECTION>_<KEY>`, upper case.
pub fn env_var(key: &str) -> String {
    format!("PEERPACK_{}", key.replace('.', "_").to_uppercase())
}

/// Default [`Config::min_provider_score`].
pub const DEFAULT_MIN_PROVIDER_SCORE: f64 = 0.2;
/// Default [`Config::cache_quota`]: 1 GiB.
pub const DEFAULT_CACHE_QUOTA: u64 = 1 << 30;

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct File {
    /// `[network]`.
    pub network: NetworkSection,
    /// `[api]`.
    pub api: ApiSection,
    /// `[transfer]`.
    pub transfer: TransferSection,
    /// `[cache]`.
    pub cache: CacheSection,
    /// `[install]`.
    pub install: InstallSection,
    /// `[trust]`.
    pub trust: TrustSection,
    /// `[dht]`.
    pub dht: DhtSection,
    /// `[telemetry]`.
    pub telemetry: TelemetrySection,
}

/// `[telemetry]` of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// The OTLP collector's base URL; absent: OTLP export only if `OTEL_EXPORTER_OTLP_*`
    /// asks for it.
    pub otlp_endpoint: Option<String>,
    /// `http/protobuf` or `grpc`; absent means `http/protobuf`.
    pub otlp_protocol: Option<crate::otlp::Protocol>,
    /// Export spans over OTLP; absent means yes.
    pub traces: Option<bool>,
    /// Export metrics over OTLP; absent means yes.
    pub metrics: Option<bool>,
    /// Seconds between metric exports; absent means 10.
    pub metric_interval: Option<u64>,
    /// `text` or `json`; absent means `text`.
    pub log_format: Option<LogFormat>,
    /// The log filter (`info`, `debug`, `peerpack_node=debug,info`); absent means `info`.
    /// `RUST_LOG` overrides it.
    pub log_level: Option<String>,
}

/// How the node writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line per event, for people.
    #[default]
    Text,
    /// One JSON object per event, for log collectors.
    Json,
}

/// `[install]` of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InstallSection {
    /// `auto`, `copy`, `hardlink` or `extract`; absent means `auto`.
    pub link: Option<peerpack_store::unpacked::LinkMode>,
}

/// `[dht]` of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DhtSection {
    /// Seconds between republishing this node's own records; absent means 21600 (6 hours).
    pub republish_interval: Option<u64>,
    /// Seconds between re-announcing the archives this node holds; absent means 43200 (12
    /// hours).
    pub reprovide_interval: Option<u64>,
    /// Most provider records of other peers kept; absent means 100,000.
    pub max_provider_records: Option<u64>,
}

/// `[trust]` of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustSection {
    /// Curator keys (`ed25519:<hex>`) whose lists decide name owners, highest priority first.
    pub curators: Vec<peerpack_core::PublicKey>,
}

/// `[transfer]` of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransferSection {
    /// Upload limit in bytes per second; absent means unlimited.
    pub upload_limit: Option<u64>,
    /// Providers scoring below this are not asked; absent means 0.2.
    pub min_provider_score: Option<f64>,
}

/// `[cache]` of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSection {
    /// Cache quota in bytes; absent means 1 GiB.
    pub quota: Option<u64>,
}

/// `[network]` of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    /// Listen addresses; absent means `/ip4/0.0.0.0/tcp/0`.
    pub listen: Vec<Multiaddr>,
    /// Bootstrap peers; absent means none.
    pub bootstrap: Vec<Multiaddr>,
    /// Address policy; absent means derived from `listen`.
    pub policy: Option<AddressPolicy>,
    /// Addresses to advertise; absent means only the listen addresses.
    pub external: Vec<Multiaddr>,
    /// Whether to pull whole catalogues from peers; absent means yes.
    pub catalogue_sync: Option<bool>,
    /// Seconds a DHT query may take; absent means 30.
    pub query_timeout: Option<u64>,
    /// Seconds before an idle connection is closed; absent means 300.
    pub idle_timeout: Option<u64>,
    /// Peers kept connected; absent means 48.
    pub max_peers: Option<u64>,
}

/// `[api]` of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// API listen address; absent means `127.0.0.1:0`.
    pub listen: Option<SocketAddr>,
    /// Allow a non-loopback `listen`; absent means no.
    pub public: Option<bool>,
}

/// Errors reading the config file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unreadable.
    #[error("config file {}", .0.display())]
    Read(PathBuf, #[source] std::io::Error),
    /// Invalid TOML or an unknown key.
    #[error("config file {path}: {reason}", path = .0.display(), reason = .1)]
    Parse(PathBuf, String),
    /// An environment variable that is not a setting, or whose value does not fit it.
    #[error("environment variable {var}: {reason}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        reason: String,
    },
    /// A value out of range.
    #[error("{key} = {value}: {reason}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl File {
    /// The settings given by environment variables `PEERPACK_<SECTION>_<KEY>` among `vars`
    /// (lists comma-separated; other values as in TOML, a bare word being a string). A
    /// variable that looks like a setting (`PEERPACK_NETWORK_*`, `PEERPACK_API_*`, ...) but is
    /// none, or whose value does not fit, is an error naming it.
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, Error> {
        let sections = [
            "NETWORK",
            "API",
            "TRANSFER",
            "CACHE",
            "INSTALL",
            "TRUST",
            "DHT",
            "TELEMETRY",
        ];
        let mut table = toml::Table::new();
        for (var, raw) in vars {
            let Some(rest) = var.strip_prefix("PEERPACK_") else {
                continue;
            };
            // Client settings share the prefix: they are not node configuration.
            if !sections.iter().any(|s| rest.starts_with(&format!("{s}_")))
                || CLIENT_VARS.contains(&var.as_str())
            {
                continue;
            }
            let Some(key) = KEYS.iter().find(|k| env_var(k) == var) else {
                return Err(Error::Env {
                    var,
                    reason: format!(
                        "not a setting; the settings are {}",
                        KEYS.iter()
                            .map(|k| env_var(k))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            };
            let value = if LIST_KEYS.contains(key) {
                toml::Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_owned()))
                        .collect(),
                )
            } else {
                toml::from_str::<toml::Table>(&format!("v = {raw}"))
                    .ok()
                    .and_then(|mut t| t.remove("v"))
                    .unwrap_or_else(|| toml::Value::String(raw.clone()))
            };
            let (section, name) = key.split_once('.').unwrap_or((key, ""));
            // Each variable alone first, so that an error names it.
            let mut one = toml::Table::new();
            let mut inner = toml::Table::new();
            inner.insert(name.to_owned(), value.clone());
            one.insert(section.to_owned(), toml::Value::Table(inner));
            toml::Value::Table(one)
                .try_into::<File>()
                .map_err(|e| Error::Env {
                    var: var.clone(),
                    reason: e.to_string().trim().to_owned(),
                })?;
            if let toml::Value::Table(t) = table
                .entry(section.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            {
                t.insert(name.to_owned(), value);
            }
        }
        toml::Value::Table(table)
            .try_into()
            .map_err(|e| Error::Env {
                var: "PEERPACK_*".into(),
                reason: e.to_string(),
            })
    }

    /// Read a config file.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Read(path.to_owned(), e))?;
        toml::from_str(&text)
            .map_err(|e| Error::Parse(path.to_owned(), e.to_string().trim().to_owned()))
    }
}

impl Config {
    /// The OTLP export these settings ask for: the config's endpoint, else what the standard
    /// `OTEL_*` variables among `var` ask for; `None`: no export.
    pub fn otlp(
        &self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<crate::otlp::Otlp>, String> {
        match &self.otlp_endpoint {
            Some(endpoint) => Ok(Some(crate::otlp::Otlp {
                endpoint: Some(endpoint.clone()),
                protocol: self.otlp_protocol,
                traces: self.otlp_traces,
                metrics: self.otlp_metrics,
                interval: self.metric_interval,
            })),
            None => Ok(crate::otlp::Otlp::from_env(var)?.map(|mut o| {
                o.traces &= self.otlp_traces;
                o.metrics &= self.otlp_metrics;
                if self.origins.contains_key("telemetry.metric_interval") {
                    o.interval = self.metric_interval;
                }
                o
            })),
        }
    }

    /// Defaults for a node keeping its state in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen: vec![default_listen()],
            bootstrap: Vec::new(),
            policy: None,
            api: SocketAddr::from(([127, 0, 0, 1], 0)),
            external: Vec::new(),
            catalogue_sync: true,
            upload_limit: None,
            min_provider_score: DEFAULT_MIN_PROVIDER_SCORE,
            cache_quota: DEFAULT_CACHE_QUOTA,
            install_link: peerpack_store::unpacked::LinkMode::Auto,
            curators: Vec::new(),
            api_public: false,
            republish: crate::republish::Intervals::default(),
            max_provider_records: peerpack_net::dht_store::DEFAULT_MAX_PROVIDER_RECORDS,
            query_timeout: std::time::Duration::from_secs(30),
            idle_timeout: std::time::Duration::from_secs(300),
            max_peers: peerpack_net::DEFAULT_MAX_PEERS,
            trim_grace: std::time::Duration::from_secs(10),
            origins: std::collections::BTreeMap::new(),
            telemetry: None,
            otlp_endpoint: None,
            otlp_protocol: crate::otlp::Protocol::HttpProtobuf,
            otlp_traces: true,
            otlp_metrics: true,
            metric_interval: crate::otlp::DEFAULT_INTERVAL,
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
        }
    }

    /// A loopback-only node for tests and the demo: listens on 127.0.0.1 port 0.
    pub fn loopback(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: vec![loopback_listen()],
            ..Self::new(data_dir)
        }
    }

    /// Apply a config file over these settings.
    pub fn apply_file(&mut self, file: File, path: &Path) -> Result<(), Error> {
        let path = path.to_owned();
        self.apply(file, |_| Origin::File(path.clone()))
    }

    /// Apply one layer of settings (a file, the environment, the flags) over these, noting
    /// for each key it sets the origin `origin(key)`. Fails on a value out of range, naming
    /// the key.
    pub fn apply(
        &mut self,
        file: File,
        origin: impl Fn(&'static str) -> Origin,
    ) -> Result<(), Error> {
        let set =
            |key: &'static str,
             replace: bool,
             origins: &mut std::collections::BTreeMap<&'static str, Vec<Origin>>| {
                let o = origins.entry(key).or_default();
                if replace {
                    o.clear();
                }
                o.push(origin(key));
            };
        let origins = &mut self.origins;
        if !file.network.listen.is_empty() {
            self.listen = file.network.listen;
            set("network.listen", true, origins);
        }
        if !file.network.bootstrap.is_empty() {
            self.bootstrap.extend(file.network.bootstrap);
            set("network.bootstrap", false, origins);
        }
        if file.network.policy.is_some() {
            self.policy = file.network.policy;
            set("network.policy", true, origins);
        }
        if !file.network.external.is_empty() {
            self.external.extend(file.network.external);
            set("network.external", false, origins);
        }
        if let Some(sync) = file.network.catalogue_sync {
            self.catalogue_sync = sync;
            set("network.catalogue_sync", true, origins);
        }
        if let Some(t) = file.network.query_timeout {
            self.query_timeout = seconds("network.query_timeout", t)?;
            set("network.query_timeout", true, origins);
        }
        if let Some(t) = file.network.idle_timeout {
            self.idle_timeout = seconds("network.idle_timeout", t)?;
            set("network.idle_timeout", true, origins);
        }
        if let Some(n) = file.network.max_peers {
            if !(MIN_PEERS..=MAX_PEERS).contains(&n) {
                return Err(Error::Invalid {
                    key: "network.max_peers",
                    value: n.to_string(),
                    reason: "must be from 8 to 10000",
                });
            }
            self.max_peers = n as usize;
            set("network.max_peers", true, origins);
        }
        if let Some(api) = file.api.listen {
            self.api = api;
            set("api.listen", true, origins);
        }
        if let Some(public) = file.api.public {
            self.api_public = public;
            set("api.public", true, origins);
        }
        if file.transfer.upload_limit.is_some() {
            if file.transfer.upload_limit == Some(0) {
                return Err(Error::Invalid {
                    key: "transfer.upload_limit",
                    value: "0".into(),
                    reason: "must be at least 1 byte per second (leave it out for no limit)",
                });
            }
            self.upload_limit = file.transfer.upload_limit;
            set("transfer.upload_limit", true, origins);
        }
        if let Some(min) = file.transfer.min_provider_score {
            if !(0.0..=1.0).contains(&min) {
                return Err(Error::Invalid {
                    key: "transfer.min_provider_score",
                    value: min.to_string(),
                    reason: "must be a reputation from 0 to 1",
                });
            }
            self.min_provider_score = min;
            set("transfer.min_provider_score", true, origins);
        }
        if let Some(quota) = file.cache.quota {
            self.cache_quota = quota;
            set("cache.quota", true, origins);
        }
        if let Some(link) = file.install.link {
            self.install_link = link;
            set("install.link", true, origins);
        }
        if let Some(t) = file.dht.republish_interval {
            self.republish.records = seconds("dht.republish_interval", t)?;
            set("dht.republish_interval", true, origins);
        }
        if let Some(t) = file.dht.reprovide_interval {
            self.republish.providers = seconds("dht.reprovide_interval", t)?;
            set("dht.reprovide_interval", true, origins);
        }
        if let Some(n) = file.dht.max_provider_records {
            if !(MIN_PROVIDER_RECORDS..=MAX_PROVIDER_RECORDS).contains(&n) {
                return Err(Error::Invalid {
                    key: "dht.max_provider_records",
                    value: n.to_string(),
                    reason: "must be from 100 to 100000000",
                });
            }
            self.max_provider_records = n;
            set("dht.max_provider_records", true, origins);
        }
        let t = file.telemetry;
        if let Some(e) = t.otlp_endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(Error::Invalid {
                    key: "telemetry.otlp_endpoint",
                    value: e,
                    reason: "must be a URL starting with http:// or https://",
                });
            }
            self.otlp_endpoint = Some(e);
            set("telemetry.otlp_endpoint", true, origins);
        }
        if let Some(p) = t.otlp_protocol {
            self.otlp_protocol = p;
            set("telemetry.otlp_protocol", true, origins);
        }
        if let Some(v) = t.traces {
            self.otlp_traces = v;
            set("telemetry.traces", true, origins);
        }
        if let Some(v) = t.metrics {
            self.otlp_metrics = v;
            set("telemetry.metrics", true, origins);
        }
        if let Some(v) = t.metric_interval {
            self.metric_interval = seconds("telemetry.metric_interval", v)?;
            set("telemetry.metric_interval", true, origins);
        }
        if let Some(v) = t.log_format {
            self.log_format = v;
            set("telemetry.log_format", true, origins);
        }
        if let Some(v) = t.log_level {
            self.log_level = v;
            set("telemetry.log_level", true, origins);
        }
        if !file.trust.curators.is_empty() {
            for c in file.trust.curators {
                if !self.curators.contains(&c) {
                    self.curators.push(c);
                }
            }
            set("trust.curators", false, origins);
        }
        Ok(())
    }

    /// Each setting with its value as text and where it came from (`default` when no layer
    /// set it), in [`KEYS`] order.
    pub fn describe(&self) -> Vec<(&'static str, String, String)> {
        let list = |v: &[Multiaddr]| {
            if v.is_empty() {
                "(none)".to_owned()
            } else {
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        KEYS.iter()
            .map(|&key| {
                let value = match key {
                    "network.listen" => list(&self.listen),
                    "network.bootstrap" => list(&self.bootstrap),
                    "network.policy" => self.policy.map_or_else(
                        || "(derived from the listen addresses)".to_owned(),
                        |p| {
                            match p {
                                AddressPolicy::LoopbackOnly => "loopback-only",
                                AddressPolicy::Private => "private",
                                AddressPolicy::Any => "any",
                            }
                            .to_owned()
                        },
                    ),
                    "network.external" => list(&self.external),
                    "network.catalogue_sync" => self.catalogue_sync.to_string(),
                    "network.query_timeout" => format!("{}", self.query_timeout.as_secs()),
                    "network.idle_timeout" => format!("{}", self.idle_timeout.as_secs()),
                    "network.max_peers" => self.max_peers.to_string(),
                    "api.listen" => self.api.to_string(),
                    "api.public" => self.api_public.to_string(),
                    "transfer.upload_limit" => self
                        .upload_limit
                        .map_or_else(|| "(unlimited)".to_owned(), |l| l.to_string()),
                    "transfer.min_provider_score" => self.min_provider_score.to_string(),
                    "cache.quota" => self.cache_quota.to_string(),
                    "install.link" => self.install_link.to_string(),
                    "trust.curators" => {
                        if self.curators.is_empty() {
                            "(none)".to_owned()
                        } else {
                            self.curators
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    }
                    "dht.republish_interval" => self.republish.records.as_secs().to_string(),
                    "dht.reprovide_interval" => self.republish.providers.as_secs().to_string(),
                    "dht.max_provider_records" => self.max_provider_records.to_string(),
                    "telemetry.otlp_endpoint" => self.otlp_endpoint.clone().unwrap_or_else(|| {
                        "(none: OTLP export only if OTEL_EXPORTER_OTLP_ENDPOINT is set)".to_owned()
                    }),
                    "telemetry.otlp_protocol" => match self.otlp_protocol {
                        crate::otlp::Protocol::HttpProtobuf => "http/protobuf".to_owned(),
                        crate::otlp::Protocol::Grpc => "grpc".to_owned(),
                    },
                    "telemetry.traces" => self.otlp_traces.to_string(),
                    "telemetry.metrics" => self.otlp_metrics.to_string(),
                    "telemetry.metric_interval" => self.metric_interval.as_secs().to_string(),
                    "telemetry.log_format" => match self.log_format {
                        LogFormat::Text => "text".to_owned(),
                        LogFormat::Json => "json".to_owned(),
                    },
                    "telemetry.log_level" => self.log_level.clone(),
                    _ => String::new(),
                };
                let origin = self.origins.get(key).filter(|o| !o.is_empty()).map_or_else(
                    || "default".to_owned(),
                    |o| {
                        o.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(" + ")
                    },
                );
                (key, value, origin)
            })
            .collect()
    }
}

/// Fewest peers `network.max_peers` may keep: fewer would starve the gossip mesh (6 to 12
/// per topic) and Kademlia's queries.
const MIN_PEERS: u64 = 8;
/// Most peers `network.max_peers` may keep.
const MAX_PEERS: u64 = 10_000;
/// Fewest provider records `dht.max_provider_records` may keep.
const MIN_PROVIDER_RECORDS: u64 = 100;
/// Most provider records `dht.max_provider_records` may keep (about 20 GB of rows).
const MAX_PROVIDER_RECORDS: u64 = 100_000_000;

/// A duration setting in seconds: at least 1.
fn seconds(key: &'static str, s: u64) -> Result<std::time::Duration, Error> {
    if s == 0 {
        return Err(Error::Invalid {
            key,
            value: "0".into(),
            reason: "must be at least 1 second",
        });
    }
    Ok(std::time::Duration::from_secs(s))
}

/// `/ip4/0.0.0.0/tcp/0`.
pub fn default_listen() -> Multiaddr {
    Multiaddr::empty()
        .with(peerpack_net::p2p::multiaddr::Protocol::Ip4(
            [0, 0, 0, 0].into(),
        ))
        .with(peerpack_net::p2p::multiaddr::Protocol::Tcp(0))
}

/// `/ip4/127.0.0.1/tcp/0`.
pub fn loopback_listen() -> Multiaddr {
    Multiaddr::empty()
        .with(peerpack_net::p2p::multiaddr::Protocol::Ip4(
            [127, 0, 0, 1].into(),
        ))
        .with(peerpack_net::p2p::multiaddr::Protocol::Tcp(0))
}

/// The config file a node reads when no `--config` is given.
pub const DEFAULT_FILE: &str = "config.toml";

/// A listen address that stays the same across restarts, for a node that was given none:
/// `/ip4/IP/tcp/PORT` (the node uses 0.0.0.0) with a port free now, written to `file` (`DATA_DIR/config.toml`)
/// so that the next start reuses it. A file that exists but has a `[network]` table of its
/// own is not edited: then the port is chosen afresh (`tcp/0`), with a warning.
pub fn stable_listen(file: &Path, ip: std::net::IpAddr) -> Multiaddr {
    let existing = match std::fs::read_to_string(file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "cannot read the config file; listening on a new port");
            return default_listen();
        }
    };
    if existing
        .as_deref()
        .is_some_and(|t| t.lines().any(|l| l.trim() == "[network]"))
    {
        tracing::warn!(
            file = %file.display(),
            "the config file has a [network] table without `listen`: the port changes on every start; add listen = [\"/ip4/0.0.0.0/tcp/PORT\"] to keep one"
        );
        return default_listen();
    }
    let port = match std::net::TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot pick a port; listening on a new one");
            return default_listen();
        }
    };
    let addr = Multiaddr::empty()
        .with(match ip {
            std::net::IpAddr::V4(v4) => peerpack_net::p2p::multiaddr::Protocol::Ip4(v4),
            std::net::IpAddr::V6(v6) => peerpack_net::p2p::multiaddr::Protocol::Ip6(v6),
        })
        .with(peerpack_net::p2p::multiaddr::Protocol::Tcp(port));
    let text = format!(
        "{}\n# Chosen by the first start of this node, and kept so that peers find it again after a\n# restart. Change it here; a --listen flag overrides it.\n[network]\nlisten = [\"{addr}\"]\n",
        existing
            .as_deref()
            .unwrap_or("# peerpack node configuration (see docs/CONFIG.md).")
            .trim_end()
    );
    if let Err(e) = peerpack_core::fs::atomic_write(file, text.as_bytes()) {
        tracing::warn!(file = %file.display(), error = %e, "cannot keep the chosen port");
    } else {
        tracing::info!(%addr, file = %file.display(), "chose a listen port for good");
    }
    addr
}

#[cfg(test)]
mod stable_tests {
    use super::*;

    #[test]
    fn a_chosen_port_is_written_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(DEFAULT_FILE);
        std::fs::write(&file, "[cache]\nquota = 5\n").unwrap();
        let addr = stable_listen(&file, [127, 0, 0, 1].into());
        assert!(
            addr.to_string().starts_with("/ip4/127.0.0.1/tcp/"),
            "{addr}"
        );
        assert!(!addr.to_string().ends_with("/tcp/0"), "{addr}");
        let read = File::read(&file).unwrap();
        assert_eq!(read.network.listen, vec![addr]);
        assert_eq!(read.cache.quota, Some(5), "the rest of the file is kept");
        // A [network] table of the operator's own is never edited.
        let before = std::fs::read_to_string(&file).unwrap();
        assert!(
            stable_listen(&file, [127, 0, 0, 1].into())
                .to_string()
                .ends_with("/tcp/0")
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod layer_tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<File, Error> {
        File::from_env(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn defaults_then_file_then_environment_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        std::fs::write(
            &path,
            "[cache]\nquota = 5\n[transfer]\nupload_limit = 10\nmin_provider_score = 0.5\n[network]\nbootstrap = [\"/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN\"]\n",
        )
        .unwrap();
        let mut c = Config::new(dir.path());
        c.apply_file(File::read(&path).unwrap(), &path).unwrap();
        let e = env(&[
            ("PEERPACK_CACHE_QUOTA", "6"),
            ("PEERPACK_TRANSFER_UPLOAD_LIMIT", "11"),
            ("PEERPACK_DHT_REPUBLISH_INTERVAL", "60"),
            (
                "PEERPACK_NETWORK_BOOTSTRAP",
                "/ip4/127.0.0.1/tcp/2/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
            ),
            ("PEERPACK_DATA_DIR", "/elsewhere"),
            ("PEERPACK_API", "http://127.0.0.1:1"),
            ("PEERPACK_API_TOKEN", "secret"),
            ("HOME", "/root"),
        ])
        .unwrap();
        c.apply(e, |k| Origin::Env(env_var(k))).unwrap();
        let mut flags = File::default();
        flags.transfer.upload_limit = Some(12);
        c.apply(flags, |_| Origin::Flag("--upload-limit".into()))
            .unwrap();

        assert_eq!(c.cache_quota, 6);
        assert_eq!(c.upload_limit, Some(12));
        assert_eq!(c.min_provider_score, 0.5);
        assert_eq!(c.republish.records, std::time::Duration::from_secs(60));
        assert_eq!(c.bootstrap.len(), 2, "lists add up");
        let rows: std::collections::HashMap<_, _> = c
            .describe()
            .into_iter()
            .map(|(k, v, o)| (k, (v, o)))
            .collect();
        assert_eq!(rows.len(), KEYS.len());
        assert_eq!(
            rows["cache.quota"],
            (
                "6".to_owned(),
                "environment PEERPACK_CACHE_QUOTA".to_owned()
            )
        );
        assert_eq!(
            rows["transfer.upload_limit"].1, "flag --upload-limit",
            "the highest layer wins"
        );
        assert_eq!(
            rows["transfer.min_provider_score"].1,
            format!("file {}", path.display())
        );
        assert_eq!(
            rows["network.bootstrap"].1,
            format!(
                "file {} + environment PEERPACK_NETWORK_BOOTSTRAP",
                path.display()
            )
        );
        assert_eq!(rows["api.listen"].1, "default");
    }

    #[test]
    fn a_bad_environment_variable_is_named() {
        let err = env(&[("PEERPACK_CACHE_QUOTAS", "5")]).unwrap_err();
        assert!(err.to_string().contains("PEERPACK_CACHE_QUOTAS"), "{err}");
        assert!(err.to_string().contains("not a setting"), "{err}");
        let err = env(&[("PEERPACK_CACHE_QUOTA", "lots")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("environment variable PEERPACK_CACHE_QUOTA:"),
            "{err}"
        );
        let err = env(&[("PEERPACK_NETWORK_LISTEN", "not-an-address")]).unwrap_err();
        assert!(err.to_string().contains("PEERPACK_NETWORK_LISTEN"), "{err}");
    }

    #[test]
    fn values_out_of_range_are_named() {
        let mut c = Config::new("/tmp/x");
        let mut f = File::default();
        f.transfer.min_provider_score = Some(1.5);
        let err = c.apply(f, |_| Origin::Flag("x".into())).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("transfer.min_provider_score = 1.5"),
            "{err}"
        );
        let mut f = File::default();
        f.dht.reprovide_interval = Some(0);
        let err = c.apply(f, |_| Origin::Flag("x".into())).unwrap_err();
        assert!(err.to_string().contains("dht.reprovide_interval"), "{err}");
        let mut f = File::default();
        f.dht.max_provider_records = Some(99);
        let err = c.apply(f, |_| Origin::Flag("x".into())).unwrap_err();
        assert!(
            err.to_string().starts_with("dht.max_provider_records = 99"),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_or_unknown_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        std::fs::write(&path, "[cache]\nquota = 5\n[netw").unwrap();
        let err = File::read(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        std::fs::write(&path, "[cache]\nqouta = 5\n").unwrap();
        let err = File::read(&path).unwrap_err().to_string();
        assert!(err.contains("qouta"), "{err}");
        std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        let err = File::read(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}
