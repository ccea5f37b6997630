//! Starting the network: [`Config`], and [`spawn`], which builds the swarm, starts listening
//! and hands the event loop to tokio.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::upgrade::Version;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Transport, identity, noise, tcp, yamux};
use tokio::sync::mpsc;

use crate::error::{Error, ListenError, SetupError};
use crate::event::Event;
use crate::handle::NetHandle;
use crate::policy::AddressPolicy;
use crate::{actor, behaviour, transport};

/// Peers a node keeps connected by default ([`Config::max_peers`]).
pub const DEFAULT_MAX_PEERS: usize = 48;

/// Network configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The node's identity.
    pub keypair: identity::Keypair,
    /// Addresses to listen on (tests use `/ip4/127.0.0.1/tcp/0`).
    pub listen: Vec<Multiaddr>,
    /// Address policy; `None` derives it from `listen` ([`AddressPolicy::default_for`]).
    pub policy: Option<AddressPolicy>,
    /// Addresses to advertise besides the listen addresses (e.g. a public address behind NAT).
    pub external_addrs: Vec<Multiaddr>,
    /// Agent version announced through Identify.
    pub agent_version: String,
    /// Kademlia query timeout.
    pub query_timeout: Duration,
    /// Idle connections are closed after this long.
    pub idle_timeout: Duration,
    /// Most established connections.
    pub max_connections: u32,
    /// Peers kept connected. Past this, every 5 s, the least recently used peers are
    /// disconnected down to two thirds of it, except those with a request or a connect
    /// waiting, those dialled at the operator's request, and those used within `trim_grace`;
    /// gossip mesh peers go last, and only down to `max_peers`. Kademlia keeps their
    /// addresses, so a later query dials them again.
    pub max_peers: usize,
    /// A peer used (connected, a request, an answer, a gossip message) this recently is not
    /// disconnected for `max_peers`. Default 10 s.
    pub trim_grace: Duration,
    /// Durable state behind the Kademlia store; empty: everything in memory.
    pub backing: Backing,
    /// Most provider records from other peers the node keeps (default
    /// [`DEFAULT_MAX_PROVIDER_RECORDS`](crate::dht_store::DEFAULT_MAX_PROVIDER_RECORDS)).
    /// Past it, records for new keys or from new providers are refused until some expire.
    pub max_provider_records: u64,
    /// Where the network's own metrics go (OpenTelemetry); default: the global meter.
    pub meter: opentelemetry::metrics::Meter,
    /// Where libp2p's metrics go (libp2p-metrics, with bandwidth by transport).
    pub registry: Arc<std::sync::Mutex<prometheus_client::registry::Registry>>,
}

/// The [`DhtBacking`](crate::DhtBacking) a network starts with, taken by [`spawn`].
#[derive(Clone, Default)]
pub struct Backing(Arc<std::sync::Mutex<Option<Box<dyn crate::DhtBacking>>>>);

impl Backing {
    /// A network whose Kademlia store reads and writes through `backing`.
    pub fn new(backing: impl crate::DhtBacking) -> Self {
        Self(Arc::new(std::sync::Mutex::new(Some(Box::new(backing)))))
    }

    fn take(&self) -> Box<dyn crate::DhtBacking> {
        peerpack_core::sync::lock(&self.0)
            .take()
            .unwrap_or_else(|| Box::new(crate::MemoryBacking::default()))
    }
}

impl std::fmt::Debug for Backing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Backing")
    }
}

impl Config {
    /// Defaults for `keypair` listening on `listen`.
    pub fn new(keypair: identity::Keypair, listen: Vec<Multiaddr>) -> Self {
        Self {
            keypair,
            listen,
            policy: None,
            external_addrs: Vec::new(),
            agent_version: format!("peerpack/{}", env!("CARGO_PKG_VERSION")),
            query_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            max_connections: 512,
            max_peers: DEFAULT_MAX_PEERS,
            trim_grace: Duration::from_secs(10),
            backing: Backing::default(),
            max_provider_records: crate::dht_store::DEFAULT_MAX_PROVIDER_RECORDS,
            meter: opentelemetry::global::meter("peerpack"),
            registry: Arc::default(),
        }
    }
}

/// What [`spawn`] returns.
pub struct Spawned {
    /// Handle to the event loop.
    pub handle: NetHandle,
    /// Events for the node.
    pub events: mpsc::Receiver<Event>,
    /// Addresses the node listens on, each ending in `/p2p/<id>`.
    pub listen_addrs: Vec<Multiaddr>,
    /// The policy in force.
    pub policy: AddressPolicy,
}

/// Build the swarm, start listening, wait until every listener has an address, and spawn the
/// event loop on the current tokio runtime.
pub async fn spawn(config: Config) -> Result<Spawned, Error> {
    let policy = config
        .policy
        .unwrap_or_else(|| AddressPolicy::default_for(&config.listen));
    let refused = Arc::new(AtomicU64::new(0));
    let settings = behaviour::Settings {
        query_timeout: config.query_timeout,
        max_connections: config.max_connections,
        agent_version: config.agent_version.clone(),
        backing: config.backing.take(),
        max_provider_records: config.max_provider_records,
    };
    let refused_for_transport = refused.clone();
    let operator = transport::OperatorAddrs::default();
    let operator_for_transport = operator.clone();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_other_transport(move |key| {
            let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                transport::Filtered::new(
                    tcp,
                    policy,
                    refused_for_transport,
                    operator_for_transport,
                )
                .upgrade(Version::V1)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default())
                .timeout(behaviour::CONNECT_TIMEOUT),
            )
        })
        .map_err(|e| Error::Setup(SetupError::Transport(Arc::new(e))))?
        .with_bandwidth_metrics(&mut peerpack_core::sync::lock(&config.registry))
        .with_behaviour(|key| {
            behaviour::Behaviour::new(key, settings)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })
        })
        .map_err(|e| Error::Setup(SetupError::Behaviour(Arc::new(e))))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();

    for addr in &config.listen {
        refuse_taken_port(addr)?;
        swarm.listen_on(addr.clone()).map_err(|e| Error::Listen {
            addr: addr.clone(),
            reason: ListenError::Transport(Arc::new(e)),
        })?;
    }
    for addr in &config.external_addrs {
        swarm.add_external_address(addr.clone());
    }
    let peer_id = *swarm.local_peer_id();
    let mut listen_addrs = Vec::new();
    let wait = async {
        while listen_addrs.len() < config.listen.len() {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => {
                    listen_addrs.push(address.with_p2p(peer_id).unwrap_or_else(|a| a));
                }
                SwarmEvent::ListenerClosed {
                    addresses, reason, ..
                } => {
                    return Err(Error::Listen {
                        addr: addresses.first().cloned().unwrap_or_else(Multiaddr::empty),
                        reason: ListenError::Closed(reason.err().map(Arc::new)),
                    });
                }
                SwarmEvent::ListenerError { error, .. } => {
                    return Err(Error::Listen {
                        addr: Multiaddr::empty(),
                        reason: ListenError::Listener(Arc::new(error)),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .map_err(|_| Error::Setup(SetupError::NoListenAddress))??;

    let (cmd_tx, cmd_rx) = mpsc::channel(crate::handle::COMMAND_CAPACITY);
    let (ev_tx, ev_rx) = mpsc::channel(crate::handle::EVENT_CAPACITY);
    let metrics = crate::metrics::NetMetrics::new(&config.meter, refused.clone());
    let p2p_metrics =
        libp2p::metrics::Metrics::new(&mut peerpack_core::sync::lock(&config.registry));
    let event_loop = actor::EventLoop::new(
        swarm,
        cmd_rx,
        ev_tx,
        actor::Parts {
            policy,
            refused_dials: refused,
            operator,
            query_timeout: config.query_timeout,
            max_peers: config.max_peers,
            trim_grace: config.trim_grace,
            metrics,
            p2p_metrics,
        },
    );
    tokio::spawn(event_loop.run());
    Ok(Spawned {
        handle: NetHandle::new(cmd_tx, peer_id),
        events: ev_rx,
        listen_addrs,
        policy,
    })
}

/// The TCP listener sets `SO_REUSEPORT`, so binding a port another process listens on with it
/// too succeeds, and two nodes would share one port. Probe a fixed port first with a socket
/// that does not set it: its bind fails while another socket listens there.
fn refuse_taken_port(addr: &Multiaddr) -> Result<(), Error> {
    use libp2p::multiaddr::Protocol;
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    let (Some(ip), Some(port)) = (ip, port) else {
        return Ok(());
    };
    if port == 0 {
        return Ok(());
    }
    // SO_REUSEADDR, as the real listener sets it, so that connections of a node that just
    // stopped (TIME_WAIT) do not count; but no SO_REUSEPORT, so that a live listener does.
    let probe = || -> std::io::Result<()> {
        let sa = std::net::SocketAddr::new(ip, port);
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(sa),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        // As the listener does: an IPv6 socket does not take the IPv4 port too.
        if sa.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.bind(&sa.into())?;
        socket.listen(1)
    };
    match probe() {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(Error::Listen {
            addr: addr.clone(),
            reason: ListenError::InUse(Arc::new(e)),
        }),
        // Anything else (no such address here, no permission) is for the listener to report.
        Err(_) => Ok(()),
    }
}
