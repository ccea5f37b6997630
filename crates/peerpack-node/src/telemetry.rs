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
                .with_description("Records refused, by reason")
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

    /// Count a record refused for `reason`.
    pub fn refused(&self, reason: &'static str) {
        self.refused.add(1, &[KeyValue::new("reason", reason)]);
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
