//! Node configuration.
//!
//! Precedence: built-in defaults < the config file (`--config FILE`, else `DATA_DIR/config.toml`
//! if present) < command-line flags. A node with no listen address anywhere picks a free port
//! once and writes it to `DATA_DIR/config.toml` ([`stable_listen`]), so that its peers find it
//! at the same address after a restart. Example:
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
//!
//! [transfer]
//! upload_limit = 10485760     # bytes per second served to peers; absent: unlimited
//! min_provider_score = 0.2    # providers scoring below this are not asked
//!
//! [cache]
//! quota = 1073741824          # bytes of archives `gc` keeps besides published, installed, pinned
//!
//! [dht]
//! republish_interval = 21600  # seconds between republishing this node's records
//! reprovide_interval = 43200  # seconds between re-announcing the archives it holds
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
    /// Curator keys whose lists decide who owns a name (after owners pinned with `trust`),
    /// highest priority first. Empty: no curator decides anything.
    pub curators: Vec<peerpack_core::PublicKey>,
    /// Allow the API on a non-loopback address (it is refused otherwise).
    pub api_public: bool,
    /// How often the node republishes its records and re-announces its archives.
    pub republish: crate::republish::Intervals,
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
    /// `[trust]`.
    pub trust: TrustSection,
    /// `[dht]`.
    pub dht: DhtSection,
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
            upload_limit: None,
            min_provider_score: DEFAULT_MIN_PROVIDER_SCORE,
            cache_quota: DEFAULT_CACHE_QUOTA,
            curators: Vec::new(),
            api_public: false,
            republish: crate::republish::Intervals::default(),
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
        if let Some(public) = file.api.public {
            self.api_public = public;
        }
        if file.transfer.upload_limit.is_some() {
            self.upload_limit = file.transfer.upload_limit;
        }
        if let Some(min) = file.transfer.min_provider_score {
            self.min_provider_score = min;
        }
        if let Some(quota) = file.cache.quota {
            self.cache_quota = quota;
        }
        if let Some(s) = file.dht.republish_interval {
            self.republish.records = std::time::Duration::from_secs(s.max(1));
        }
        if let Some(s) = file.dht.reprovide_interval {
            self.republish.providers = std::time::Duration::from_secs(s.max(1));
        }
        for c in file.trust.curators {
            if !self.curators.contains(&c) {
                self.curators.push(c);
            }
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
            .unwrap_or("# peerpack node configuration (see docs/CLI.md).")
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
