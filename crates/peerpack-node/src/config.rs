//! Node configuration.
//!
//! Precedence: built-in defaults < the `--config` TOML file < command-line flags. Example:
//!
//! ```toml
//! [network]
//! listen = ["/ip4/0.0.0.0/tcp/4001"]
//! bootstrap = ["/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW..."]
//! policy = "any"          # "loopback-only", "private" or "any"; absent: derived from listen
//! external = ["/ip4/203.0.113.9/tcp/4001"]   # addresses to advertise (NAT)
//! catalogue_sync = true   # false: a light node that keeps only what it sees or looks up
//!
//! [api]
//! listen = "127.0.0.1:7878"
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
}

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct File {
    /// `[network]`.
    pub network: NetworkSection,
    /// `[api]`.
    pub api: ApiSection,
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
}

/// `[api]` of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// API listen address; absent means `127.0.0.1:0`.
    pub listen: Option<SocketAddr>,
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
}

impl File {
    /// Read a config file.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Read(path.to_owned(), e))?;
        toml::from_str(&text)
            .map_err(|e| Error::Parse(path.to_owned(), e.to_string().trim().to_owned()))
    }
}

impl Config {
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
    pub fn apply_file(&mut self, file: File) {
        if !file.network.listen.is_empty() {
            self.listen = file.network.listen;
        }
        self.bootstrap.extend(file.network.bootstrap);
        if file.network.policy.is_some() {
            self.policy = file.network.policy;
        }
        self.external.extend(file.network.external);
        if let Some(sync) = file.network.catalogue_sync {
            self.catalogue_sync = sync;
        }
        if let Some(api) = file.api.listen {
            self.api = api;
        }
    }
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
