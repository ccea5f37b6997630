//! Metrics: the node's OpenTelemetry meter provider, its instruments, and the Prometheus text
//! of `GET /metrics`.
//!
//! Each node has a meter provider of its own (so that nodes in one process, as in tests, keep
//! their figures apart). It always has a pull reader, which `/metrics` collects on each scrape;
//! with OTLP configured it also has a periodic OTLP exporter (see `otlp.rs`). libp2p's own
//! metrics (libp2p-metrics) live in a prometheus-client registry, appended to the same text.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
pub use opentelemetry_sdk::metrics::MeterProviderBuilder;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};
pub use opentelemetry_sdk::trace::SdkTracerProvider;
use peerpack_net::p2p::PeerId;

/// Bucket boundaries, in seconds, for searches and store lock waits: tens of microseconds to
/// a second.
pub const FAST_SECONDS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Bucket boundaries, in seconds, for publishes: milliseconds to a minute.
pub const SLOW_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Bucket boundaries, in bytes per second, for download throughput: 64 KiB/s to 4 GiB/s.
pub const THROUGHPUT: &[f64] = &[
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
    1_073_741_824.0,
    4_294_967_296.0,
];

/// A pull reader that `/metrics` can collect while the provider owns it.
#[derive(Debug, Clone)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// A node's metrics: the provider, its meter, the registry of libp2p's metrics, and the
/// reader `/metrics` collects.
pub struct Telemetry {
    provider: SdkMeterProvider,
    reader: SharedReader,
    meter: Meter,
    registry: Arc<Mutex<prometheus_client::registry::Registry>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Metrics read by `/metrics` only.
    pub fn new() -> Self {
        Self::with(|b| b)
    }

    /// Metrics read by `/metrics`, with more readers or exporters added by `more` (OTLP).
    pub fn with(more: impl FnOnce(MeterProviderBuilder) -> MeterProviderBuilder) -> Self {
        match Self::try_with(|b| Ok::<_, std::convert::Infallible>(more(b))) {
            Ok(t) => t,
            Err(never) => match never {},
        }
    }

    /// [`Telemetry::with`], where adding the readers may fail.
    pub fn try_with<E>(
        more: impl FnOnce(MeterProviderBuilder) -> Result<MeterProviderBuilder, E>,
    ) -> Result<Self, E> {
        let reader = SharedReader(Arc::new(ManualReader::builder().build()));
        let builder = SdkMeterProvider::builder()
            .with_resource(crate::otlp::resource())
            .with_reader(reader.clone());
        let provider = more(builder)?.build();
        let meter = provider.meter("peerpack");
        Ok(Self {
            provider,
            reader,
            meter,
            registry: Arc::default(),
        })
    }

    /// Instruments that record nothing: the provider has no reader, so no figure is
    /// aggregated, and `/metrics` serves libp2p's families only. For measuring what the
    /// metrics cost (`peerpack-bench telemetry`).
    pub fn off() -> Self {
        let provider = SdkMeterProvider::builder().build();
        let meter = provider.meter("peerpack");
        Self {
            provider,
            reader: SharedReader(Arc::new(ManualReader::builder().build())),
            meter,
            registry: Arc::default(),
        }
    }

    /// The meter every instrument of this node is made on.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The registry libp2p's metrics are written into.
    pub fn registry(&self) -> Arc<Mutex<prometheus_client::registry::Registry>> {
        self.registry.clone()
    }

    /// Push what the exporters hold now, and stop them.
    pub fn shutdown(&self) {
        let _ = self.provider.force_flush();
        let _ = self.provider.shutdown();
    }

    /// Every metric in the Prometheus text format (version 0.0.4): peerpack's, then
    /// libp2p's.
    pub fn prometheus_text(&self) -> String {
        let mut out = String::new();
        let mut rm = ResourceMetrics::default();
        if self.reader.collect(&mut rm).is_ok() {
            encode(&rm, &mut out);
        }
        let mut p2p = String::new();
        if prometheus_client::encoding::text::encode(
            &mut p2p,
            &peerpack_core::sync::lock(&self.registry),
        )
        .is_ok()
        {
            // OpenMetrics ends with `# EOF`; the Prometheus text format has no such line.
            out.push_str(p2p.trim_end().trim_end_matches("# EOF").trim_end());
            out.push('\n');
        }
        out
    }
}

impl Telemetry {
    /// Every figure of peerpack's own metrics now, for `GET /v1/status`: the same figures
    /// `/metrics` serves, by OpenTelemetry name.
    pub fn snapshot(&self) -> Snapshot {
        let mut rm = ResourceMetrics::default();
        let mut points = Vec::new();
        if self.reader.collect(&mut rm).is_ok() {
            for scope in rm.scope_metrics() {
                for m in scope.metrics() {
                    match m.data() {
                        AggregatedMetrics::U64(d) => collect_points(m.name(), d, &mut points),
                        AggregatedMetrics::I64(d) => collect_points(m.name(), d, &mut points),
                        AggregatedMetrics::F64(d) => collect_points(m.name(), d, &mut points),
                    }
                }
            }
        }
        Snapshot { points }
    }
}

/// One data point of a [`Snapshot`].
#[derive(Debug, Clone)]
pub struct Point {
    /// The instrument's OpenTelemetry name.
    pub name: String,
    /// Its attributes, as text.
    pub attributes: Vec<(String, String)>,
    /// Its value.
    pub value: PointValue,
}

/// The value of a [`Point`].
#[derive(Debug, Clone)]
pub enum PointValue {
    /// A counter's or a gauge's value.
    Number(f64),
    /// A histogram's buckets: upper bounds, and the count in each (one more, for +Inf).
    Histogram {
        /// Upper bounds.
        bounds: Vec<f64>,
        /// Counts per bucket (not cumulative).
        counts: Vec<u64>,
        /// Values recorded.
        count: u64,
    },
}

/// The figures of every metric at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    points: Vec<Point>,
}

impl Point {
    /// The value of attribute `key`.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn matches(&self, name: &str, filter: &[(&str, &str)]) -> bool {
        self.name == name && filter.iter().all(|(k, v)| self.attribute(k) == Some(*v))
    }
}

impl Snapshot {
    /// The sum of the values of `name`'s points whose attributes include `filter`
    /// (histograms count their values).
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.points
            .iter()
            .filter(|p| p.matches(name, filter))
            .map(|p| match &p.value {
                PointValue::Number(v) => *v,
                PointValue::Histogram { count, .. } => *count as f64,
            })
            .sum()
    }

    /// `name`'s points whose attributes include `filter`, each with the value of attribute
    /// `key` (summed over the other attributes), sorted by that value.
    pub fn by(&self, name: &str, key: &str, filter: &[(&str, &str)]) -> Vec<(String, f64)> {
        let mut out: std::collections::BTreeMap<String, f64> = Default::default();
        for p in self.points.iter().filter(|p| p.matches(name, filter)) {
            if let (Some(k), PointValue::Number(v)) = (p.attribute(key), &p.value) {
                *out.entry(k.to_owned()).or_default() += v;
            }
        }
        out.into_iter().collect()
    }

    /// Every point of `name`.
    pub fn points<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Point> + 'a {
        self.points.iter().filter(move |p| p.name == name)
    }

    /// The `q` quantile (0 to 1) of histogram `name` over the points whose attributes include
    /// `filter`, estimated from its buckets as Prometheus' `histogram_quantile` does: linear
    /// within the bucket it falls in. `None` with no values; the highest bound when it falls in
    /// the last, unbounded bucket.
    pub fn quantile(&self, name: &str, filter: &[(&str, &str)], q: f64) -> Option<f64> {
        let mut merged: Option<(Vec<f64>, Vec<u64>)> = None;
        for p in self.points.iter().filter(|p| p.matches(name, filter)) {
            if let PointValue::Histogram { bounds, counts, .. } = &p.value {
                match &mut merged {
                    None => merged = Some((bounds.clone(), counts.clone())),
                    Some((b, c)) if b == bounds => {
                        for (total, n) in c.iter_mut().zip(counts) {
                            *total += n;
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        let (bounds, counts) = merged?;
        quantile(&bounds, &counts, q)
    }
}

/// The `q` quantile of a histogram with `counts` per bucket under upper `bounds` (one count
/// more than bounds: the +Inf bucket).
pub fn quantile(bounds: &[f64], counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut seen = 0u64;
    for (i, &n) in counts.iter().enumerate() {
        if n > 0 && (seen + n) as f64 >= rank {
            let Some(&upper) = bounds.get(i) else {
                return bounds.last().copied();
            };
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            let within = (rank - seen as f64) / n as f64;
            return Some(lower + (upper - lower) * within.clamp(0.0, 1.0));
        }
        seen += n;
    }
    bounds.last().copied()
}

fn collect_points<T: AsF64>(name: &str, data: &MetricData<T>, out: &mut Vec<Point>) {
    let attrs = |a: &mut dyn Iterator<Item = &KeyValue>| -> Vec<(String, String)> {
        a.map(|kv| (kv.key.as_str().to_owned(), kv.value.to_string()))
            .collect()
    };
    match data {
        MetricData::Sum(sum) => {
            for p in sum.data_points() {
                out.push(Point {
                    name: name.to_owned(),
                    attributes: attrs(&mut p.attributes()),
                    value: PointValue::Number(p.value().as_f64()),
                });
            }
        }
        MetricData::Gauge(g) => {
            for p in g.data_points() {
                out.push(Point {
                    name: name.to_owned(),
                    attributes: attrs(&mut p.attributes()),
                    value: PointValue::Number(p.value().as_f64()),
                });
            }
        }
        MetricData::Histogram(h) => {
            for p in h.data_points() {
                out.push(Point {
                    name: name.to_owned(),
                    attributes: attrs(&mut p.attributes()),
                    value: PointValue::Histogram {
                        bounds: p.bounds().collect(),
                        counts: p.bucket_counts().collect(),
                        count: p.count(),
                    },
                });
            }
        }
        MetricData::ExponentialHistogram(_) => {}
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

/// `name` in Prometheus form: dots become underscores, the unit a suffix.
fn prometheus_name(name: &str, unit: &str) -> String {
    let mut n: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    match unit {
        "s" => n.push_str("_seconds"),
        "By" => n.push_str("_bytes"),
        "By/s" => n.push_str("_bytes_per_second"),
        _ => {}
    }
    n
}

fn labels<'a>(attrs: impl Iterator<Item = &'a KeyValue>, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = attrs
        .map(|kv| {
            format!(
                "{}=\"{}\"",
                prometheus_name(kv.key.as_str(), ""),
                escape(&kv.value.to_string())
            )
        })
        .collect();
    // The SDK keeps attributes in the order first recorded; a scrape lists them by name.
    parts.sort();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number<T: Into<f64> + Copy>(v: T) -> String {
    let f: f64 = v.into();
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.0}")
    } else {
        format!("{f}")
    }
}

trait AsF64: Copy {
    fn as_f64(self) -> f64;
}

impl AsF64 for u64 {
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl AsF64 for i64 {
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl AsF64 for f64 {
    fn as_f64(self) -> f64 {
        self
    }
}

/// Write `rm` in the Prometheus text format.
fn encode(rm: &ResourceMetrics, out: &mut String) {
    for scope in rm.scope_metrics() {
        for m in scope.metrics() {
            match m.data() {
                AggregatedMetrics::U64(d) => {
                    encode_data(m.name(), m.unit(), m.description(), d, out)
                }
                AggregatedMetrics::I64(d) => {
                    encode_data(m.name(), m.unit(), m.description(), d, out)
                }
                AggregatedMetrics::F64(d) => {
                    encode_data(m.name(), m.unit(), m.description(), d, out)
                }
            }
        }
    }
}

fn encode_data<T: AsF64>(
    name: &str,
    unit: &str,
    description: &str,
    data: &MetricData<T>,
    out: &mut String,
) {
    let base = prometheus_name(name, unit);
    let help = |out: &mut String, n: &str, kind: &str| {
        let _ = writeln!(out, "# HELP {n} {}", escape(description));
        let _ = writeln!(out, "# TYPE {n} {kind}");
    };
    match data {
        MetricData::Sum(sum) if sum.is_monotonic() => {
            let n = format!("{base}_total");
            help(out, &n, "counter");
            for p in sum.data_points() {
                let _ = writeln!(
                    out,
                    "{n}{} {}",
                    labels(p.attributes(), None),
                    number(p.value().as_f64())
                );
            }
        }
        MetricData::Sum(sum) => {
            help(out, &base, "gauge");
            for p in sum.data_points() {
                let _ = writeln!(
                    out,
                    "{base}{} {}",
                    labels(p.attributes(), None),
                    number(p.value().as_f64())
                );
            }
        }
        MetricData::Gauge(g) => {
            help(out, &base, "gauge");
            for p in g.data_points() {
                let _ = writeln!(
                    out,
                    "{base}{} {}",
                    labels(p.attributes(), None),
                    number(p.value().as_f64())
                );
            }
        }
        MetricData::Histogram(h) => {
            help(out, &base, "histogram");
            for p in h.data_points() {
                let mut cumulative = 0u64;
                for (bound, count) in p.bounds().zip(p.bucket_counts()) {
                    cumulative += count;
                    let _ = writeln!(
                        out,
                        "{base}_bucket{} {cumulative}",
                        labels(p.attributes(), Some(("le", number(bound))))
                    );
                }
                let _ = writeln!(
                    out,
                    "{base}_bucket{} {}",
                    labels(p.attributes(), Some(("le", "+Inf".to_owned()))),
                    p.count()
                );
                let _ = writeln!(
                    out,
                    "{base}_sum{} {}",
                    labels(p.attributes(), None),
                    number(p.sum().as_f64())
                );
                let _ = writeln!(
                    out,
                    "{base}_count{} {}",
                    labels(p.attributes(), None),
                    p.count()
                );
            }
        }
        MetricData::ExponentialHistogram(_) => {}
    }
}

/// Run `f` on tokio's blocking pool inside a span `name`, a child of the caller's span:
/// `spawn_blocking` alone would lose the trace at the thread boundary.
pub fn blocking<R: Send + 'static>(
    name: &'static str,
    f: impl FnOnce() -> R + Send + 'static,
) -> tokio::task::JoinHandle<R> {
    let span = tracing::info_span!("blocking", otel.name = name);
    tokio::task::spawn_blocking(move || span.in_scope(f))
}

/// The `result` attribute of a failed operation: the error's kind.
pub fn error_kind(e: &crate::error::Error) -> &'static str {
    use crate::error::Kind;
    match e.kind() {
        Kind::BadRequest => "bad_request",
        Kind::NotFound => "not_found",
        Kind::Conflict => "conflict",
        Kind::Unavailable => "unavailable",
        Kind::Cancelled => "cancelled",
        Kind::UnsafeArchive => "unsafe_archive",
        _ => "error",
    }
}

/// The node's own instruments (the network's are in `peerpack_net::metrics`).
#[derive(Clone)]
pub struct NodeMetrics {
    gossip: Counter<u64>,
    refused: Counter<u64>,
    requests_refused: Counter<u64>,
    downloads: Counter<u64>,
    installs: Counter<u64>,
    search: Histogram<f64>,
    publish: Histogram<f64>,
    throughput: Histogram<f64>,
    lock_wait: Histogram<f64>,
    /// The catalogue's figures the gauges read, refreshed by the periodic task.
    pub(crate) figures: Arc<Figures>,
}

impl std::fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeMetrics").finish_non_exhaustive()
    }
}

/// Catalogue figures for the gauges.
#[derive(Debug, Default)]
pub struct Figures {
    /// Packages in the catalogue.
    pub packages: std::sync::atomic::AtomicU64,
    /// Versions in the catalogue.
    pub versions: std::sync::atomic::AtomicU64,
    /// Bytes of archives in the blob store.
    pub blob_bytes: std::sync::atomic::AtomicU64,
}

impl NodeMetrics {
    /// Create the instruments on `meter`; the record cache's counters are read from `cache`.
    pub fn new(meter: &Meter, cache: Arc<peerpack_store::RecordCache>) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let figures = Arc::new(Figures::default());
        let f = figures.clone();
        meter
            .u64_observable_gauge("peerpack.catalogue.packages")
            .with_description("Packages (names) in the catalogue")
            .with_callback(move |o| o.observe(f.packages.load(Relaxed), &[]))
            .build();
        let f = figures.clone();
        meter
            .u64_observable_gauge("peerpack.catalogue.versions")
            .with_description("Versions (package records) in the catalogue")
            .with_callback(move |o| o.observe(f.versions.load(Relaxed), &[]))
            .build();
        let f = figures.clone();
        meter
            .u64_observable_gauge("peerpack.blobs.size")
            .with_description("Bytes of archives in the blob store")
            .with_unit("By")
            .with_callback(move |o| o.observe(f.blob_bytes.load(Relaxed), &[]))
            .build();
        meter
            .u64_observable_counter("peerpack.cache.lookups")
            .with_description("Record cache lookups by result (hit, miss)")
            .with_callback(move |o| {
                let s = cache.stats();
                let c = KeyValue::new("cache", "records");
                o.observe(s.hits, &[c.clone(), KeyValue::new("result", "hit")]);
                o.observe(s.misses, &[c, KeyValue::new("result", "miss")]);
            })
            .build();
        let histogram =
            |name: &'static str, description: &'static str, unit: &'static str, b: &[f64]| {
                meter
                    .f64_histogram(name)
                    .with_description(description)
                    .with_unit(unit)
                    .with_boundaries(b.to_vec())
                    .build()
            };
        Self {
            gossip: meter
                .u64_counter("peerpack.gossip.messages")
                .with_description("Gossip messages received, by topic and validation result (accept, reject, ignore)")
                .build(),
            refused: meter
                .u64_counter("peerpack.records.refused")
                .with_description("Records from other peers this node did not take, by how they came (gossip, sync, dht, lookup) and why")
                .build(),
            requests_refused: meter
                .u64_counter("peerpack.requests.refused")
                .with_description("Requests from other peers refused by a limit or as malformed, by protocol (sync, blob) and reason")
                .build(),
            downloads: meter
                .u64_counter("peerpack.downloads")
                .with_description("Archive downloads by result")
                .build(),
            installs: meter
                .u64_counter("peerpack.installs")
                .with_description("Installs by result")
                .build(),
            search: histogram("peerpack.search.duration", "Time to answer a search", "s", FAST_SECONDS),
            publish: histogram("peerpack.publish.duration", "Time to publish a package", "s", SLOW_SECONDS),
            throughput: histogram(
                "peerpack.download.throughput",
                "Bytes per second of each archive download",
                "By/s",
                THROUGHPUT,
            ),
            lock_wait: histogram(
                "peerpack.store.lock_wait",
                "Time a store operation waited for the store lock",
                "s",
                FAST_SECONDS,
            ),
            figures,
        }
    }

    /// Count a gossip message on `topic` and how validation ended.
    pub fn gossip(&self, topic: &'static str, result: &'static str) {
        self.gossip.add(
            1,
            &[
                KeyValue::new("topic", topic),
                KeyValue::new("result", result),
            ],
        );
    }

    /// A record that came `via` gossip, sync, the DHT or a lookup, refused for `reason`
    /// (`invalid`, `conflict`, `stale`, `claim`, `untrusted`): counted, and a `refused`
    /// span of its own (a child of whatever was handling it) holds the log line.
    pub fn record_refused(
        &self,
        via: &'static str,
        reason: &'static str,
        peer: Option<PeerId>,
        detail: &dyn std::fmt::Display,
    ) {
        self.refused.add(
            1,
            &[KeyValue::new("via", via), KeyValue::new("reason", reason)],
        );
        let _span = tracing::info_span!(
            "refused",
            what = "record",
            via,
            reason,
            peer = peer.as_ref().map(tracing::field::display),
        )
        .entered();
        if reason == "invalid" {
            tracing::info!(error = %detail, "refused a record");
        } else {
            tracing::debug!(error = %detail, "did not take a record");
        }
    }

    /// A request from `peer` on `protocol` (`sync`, `blob`) refused for `reason` (`rate`,
    /// `busy`, `malformed`): counted, in a `refused` span of its own.
    pub fn request_refused(
        &self,
        protocol: &'static str,
        reason: &'static str,
        peer: PeerId,
        detail: &dyn std::fmt::Display,
    ) {
        self.requests_refused.add(
            1,
            &[
                KeyValue::new("protocol", protocol),
                KeyValue::new("reason", reason),
            ],
        );
        let _span =
            tracing::info_span!("refused", what = "request", protocol, reason, %peer).entered();
        tracing::debug!(%detail, "refused a request");
    }

    /// Count a download that ended with `result`; a successful one also records its rate.
    pub fn download(&self, result: &'static str, bytes: u64, elapsed: Duration) {
        self.downloads.add(1, &[KeyValue::new("result", result)]);
        if result == "ok" && elapsed > Duration::ZERO {
            self.throughput
                .record(bytes as f64 / elapsed.as_secs_f64(), &[]);
        }
    }

    /// Count an install that ended with `result`.
    pub fn install(&self, result: &'static str) {
        self.installs.add(1, &[KeyValue::new("result", result)]);
    }

    /// Record a search's duration.
    pub fn search(&self, elapsed: Duration) {
        self.search.record(elapsed.as_secs_f64(), &[]);
    }

    /// Record a publish's duration and result.
    pub fn publish(&self, elapsed: Duration, result: &'static str) {
        self.publish
            .record(elapsed.as_secs_f64(), &[KeyValue::new("result", result)]);
    }

    /// Record how long `operation` waited for the store lock.
    pub fn lock_wait(&self, operation: &'static str, waited: Duration) {
        self.lock_wait.record(
            waited.as_secs_f64(),
            &[KeyValue::new("operation", operation)],
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_the_bucket_they_fall_in() {
        // Bounds 1, 2, 4; 10 values at most 1, 10 in (1, 2], none in (2, 4], 0 above.
        let (b, c) = ([1.0, 2.0, 4.0], [10, 10, 0, 0]);
        assert_eq!(quantile(&b, &c, 0.5), Some(1.0));
        assert_eq!(quantile(&b, &c, 0.25), Some(0.5));
        assert_eq!(quantile(&b, &c, 0.75), Some(1.5));
        assert_eq!(quantile(&b, &c, 1.0), Some(2.0));
        assert_eq!(quantile(&b, &[0, 0, 0, 0], 0.5), None);
        // In the unbounded bucket: the highest bound.
        assert_eq!(quantile(&b, &[0, 0, 0, 3], 0.99), Some(4.0));
    }

    #[test]
    fn a_snapshot_holds_what_was_recorded() {
        let t = Telemetry::new();
        let m = NodeMetrics::new(t.meter(), Arc::default());
        m.gossip("peerpack/announce/1", "accept");
        m.gossip("peerpack/announce/1", "reject");
        m.gossip("peerpack/indexes/1", "accept");
        m.search(Duration::from_micros(300));
        m.search(Duration::from_micros(300));
        let s = t.snapshot();
        assert_eq!(
            s.by("peerpack.gossip.messages", "result", &[]),
            vec![("accept".to_owned(), 2.0), ("reject".to_owned(), 1.0)]
        );
        assert_eq!(
            s.sum(
                "peerpack.gossip.messages",
                &[("topic", "peerpack/announce/1")]
            ),
            2.0
        );
        assert_eq!(s.sum("peerpack.search.duration", &[]), 2.0);
        let p50 = s.quantile("peerpack.search.duration", &[], 0.5).unwrap();
        assert!((0.00025..=0.0005).contains(&p50), "{p50}");
    }

    #[test]
    fn counters_histograms_and_gauges_read_as_prometheus_text() {
        let t = Telemetry::new();
        let m = NodeMetrics::new(t.meter(), Arc::default());
        m.gossip("peerpack/announce/1", "accept");
        m.gossip("peerpack/announce/1", "accept");
        m.search(Duration::from_micros(300));
        m.figures
            .packages
            .store(7, std::sync::atomic::Ordering::Relaxed);
        let text = t.prometheus_text();
        assert!(
            text.contains("# TYPE peerpack_gossip_messages_total counter"),
            "{text}"
        );
        assert!(
            text.contains(
                "peerpack_gossip_messages_total{result=\"accept\",topic=\"peerpack/announce/1\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("# TYPE peerpack_search_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("peerpack_search_duration_seconds_bucket{le=\"0.0005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("peerpack_search_duration_seconds_bucket{le=\"0.00025\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("peerpack_search_duration_seconds_count 1"),
            "{text}"
        );
        assert!(text.contains("peerpack_catalogue_packages 7"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
    }
}
