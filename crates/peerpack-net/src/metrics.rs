//! The network's metrics, through the OpenTelemetry API, and libp2p's own (libp2p-metrics, in
//! a prometheus-client registry).
//!
//! Counters and histograms are recorded where things happen in the event loop. The gauges are
//! observed when a reader collects: the event loop publishes its state into [`Gauges`]
//! (atomics) at every tick, so a collection never waits for the loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};

/// Bucket boundaries, in seconds, for DHT queries: from a loopback answer to a query timeout.
pub const DHT_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The event loop's state, published at every tick for the gauges.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Peers with at least one connection.
    pub connected_peers: AtomicU64,
    /// Peers in the Kademlia routing table.
    pub routing_table: AtomicU64,
    /// DHT reads, writes and provider lookups under way.
    pub pending_dht: AtomicU64,
    /// Sync and blob requests under way.
    pub pending_requests: AtomicU64,
    /// Announcements waiting for a subscribed peer.
    pub pending_announces: AtomicU64,
    /// Callers waiting for a connection.
    pub pending_connects: AtomicU64,
    /// Events dropped because the node did not keep up.
    pub dropped_events: AtomicU64,
    /// Commands waiting in the event loop's channel.
    pub command_depth: AtomicU64,
    /// Events waiting in the node's channel.
    pub event_depth: AtomicU64,
}

/// The network's instruments.
#[derive(Clone)]
pub struct NetMetrics {
    dht_queries: Counter<u64>,
    dht_duration: Histogram<f64>,
    connections: Counter<u64>,
    bytes: Counter<u64>,
    provider_records: Counter<u64>,
    trimmed: Counter<u64>,
    /// The state the gauges read.
    pub gauges: Arc<Gauges>,
}

impl std::fmt::Debug for NetMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetMetrics").finish_non_exhaustive()
    }
}

/// The kinds of DHT query, for the `kind` attribute.
#[derive(Debug, Clone, Copy)]
pub enum DhtKind {
    /// A record read.
    Get,
    /// A record write.
    Put,
    /// A provider lookup.
    Providers,
}

impl DhtKind {
    fn name(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Put => "put",
            Self::Providers => "providers",
        }
    }
}

impl NetMetrics {
    /// Create the instruments on `meter`. `refused_dials` is the transport's counter of dials
    /// the address policy refused.
    pub fn new(meter: &Meter, refused_dials: Arc<AtomicU64>) -> Self {
        let gauges = Arc::new(Gauges::default());
        let g = gauges.clone();
        let gauge = |name: &'static str, description: &'static str, read: fn(&Gauges) -> u64| {
            let g = g.clone();
            meter
                .u64_observable_gauge(name)
                .with_description(description)
                .with_callback(move |o| o.observe(read(&g), &[]))
                .build();
        };
        gauge(
            "peerpack.peers.connected",
            "Peers with at least one open connection",
            |g| g.connected_peers.load(Ordering::Relaxed),
        );
        gauge(
            "peerpack.dht.routing_table",
            "Peers in the Kademlia routing table",
            |g| g.routing_table.load(Ordering::Relaxed),
        );
        gauge(
            "peerpack.net.pending.dht",
            "DHT reads, writes and provider lookups under way",
            |g| g.pending_dht.load(Ordering::Relaxed),
        );
        gauge(
            "peerpack.net.pending.requests",
            "Catalogue sync and archive requests under way",
            |g| g.pending_requests.load(Ordering::Relaxed),
        );
        gauge(
            "peerpack.net.pending.announces",
            "Announcements waiting for a subscribed peer",
            |g| g.pending_announces.load(Ordering::Relaxed),
        );
        gauge(
            "peerpack.net.pending.connects",
            "Callers waiting for a connection",
            |g| g.pending_connects.load(Ordering::Relaxed),
        );
        gauge(
            "peerpack.net.commands.depth",
            "Commands waiting in the network event loop's channel",
            |g| g.command_depth.load(Ordering::Relaxed),
        );
        gauge(
            "peerpack.net.events.depth",
            "Network events waiting for the node",
            |g| g.event_depth.load(Ordering::Relaxed),
        );
        meter
            .u64_observable_counter("peerpack.net.events.dropped")
            .with_description("Network events dropped because the node did not keep up")
            .with_callback(move |o| o.observe(g.dropped_events.load(Ordering::Relaxed), &[]))
            .build();
        meter
            .u64_observable_counter("peerpack.dials.refused")
            .with_description("Dials the address policy refused")
            .with_callback(move |o| o.observe(refused_dials.load(Ordering::Relaxed), &[]))
            .build();
        Self {
            dht_queries: meter
                .u64_counter("peerpack.dht.queries")
                .with_description("DHT queries by kind (get, put, providers) and result")
                .build(),
            dht_duration: meter
                .f64_histogram("peerpack.dht.query.duration")
                .with_description("Time from a DHT query's start to its answer, by kind")
                .with_unit("s")
                .with_boundaries(DHT_SECONDS.to_vec())
                .build(),
            connections: meter
                .u64_counter("peerpack.connections")
                .with_description("Connections opened and closed (event = opened, closed)")
                .build(),
            bytes: meter
                .u64_counter("peerpack.payload")
                .with_description(
                    "Payload bytes of peerpack's protocols by protocol (sync, blob) and direction",
                )
                .with_unit("By")
                .build(),
            trimmed: meter
                .u64_counter("peerpack.connections.trimmed")
                .with_description(
                    "Peers disconnected because more than network.max_peers were connected",
                )
                .build(),
            provider_records: meter
                .u64_counter("peerpack.dht.provider_records")
                .with_description("Provider records other peers added, by result (kept, refused)")
                .build(),
            gauges,
        }
    }

    /// Count a DHT query that ended with `result` after `elapsed`.
    pub fn dht_query(&self, kind: DhtKind, result: &'static str, elapsed: Duration) {
        let attrs = [
            KeyValue::new("kind", kind.name()),
            KeyValue::new("result", result),
        ];
        self.dht_queries.add(1, &attrs);
        // A write the local store refused never became a query: no latency to record.
        if result != "refused" {
            self.dht_duration.record(elapsed.as_secs_f64(), &attrs[..1]);
        }
    }

    /// Count a connection opened or closed.
    pub fn connection(&self, event: &'static str) {
        self.connections.add(1, &[KeyValue::new("event", event)]);
    }

    /// Count payload bytes of `protocol` going in `direction` (`sent`, `received`).
    pub fn bytes(&self, protocol: &'static str, direction: &'static str, n: u64) {
        self.bytes.add(
            n,
            &[
                KeyValue::new("protocol", protocol),
                KeyValue::new("direction", direction),
            ],
        );
    }

    /// Count peers let go because too many were connected.
    pub fn trimmed(&self, n: u64) {
        self.trimmed.add(n, &[]);
    }

    /// Count a provider record another peer added: `kept`, or `refused` with its reason
    /// (`quota`, `full`).
    pub fn provider_record(&self, result: &'static str, reason: &'static str) {
        if reason.is_empty() {
            self.provider_records
                .add(1, &[KeyValue::new("result", result)]);
        } else {
            self.provider_records.add(
                1,
                &[
                    KeyValue::new("result", result),
                    KeyValue::new("reason", reason),
                ],
            );
        }
    }
}
