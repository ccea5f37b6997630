//! What the node tells an OpenTelemetry collector about itself.

/// The resource every metric and span of this process carries: `service.name = peerpack`, its
/// version, and what `OTEL_RESOURCE_ATTRIBUTES` / `OTEL_SERVICE_NAME` add.
pub fn resource() -> opentelemetry_sdk::Resource {
    let builder = opentelemetry_sdk::Resource::builder().with_attribute(
        opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
    );
    let named_by_env = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| {
            a.split(',')
                .any(|kv| kv.trim().starts_with("service.name="))
        });
    if named_by_env {
        builder.build()
    } else {
        builder.with_service_name("peerpack").build()
    }
}

use std::time::Duration;

use opentelemetry_otlp::WithExportConfig;

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum Protocol {
    /// Protobuf over HTTP (port 4318 by convention).
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// gRPC (port 4317 by convention).
    #[serde(rename = "grpc")]
    Grpc,
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "http/protobuf" => Ok(Self::HttpProtobuf),
            "grpc" => Ok(Self::Grpc),
            other => Err(format!(
                "{other:?} is not an OTLP protocol: use http/protobuf or grpc"
            )),
        }
    }
}

/// The filter of the span export: every span peerpack names is at `INFO`; libp2p's chatty
/// modules are quieted as in the log.
pub const SPAN_FILTER: &str = "info,libp2p_kad=error,libp2p_swarm=warn,libp2p_gossipsub=warn";

/// The tracing layer that turns the node's spans into OpenTelemetry spans of `provider`, as
/// `peerpack node` installs it (its filter is [`SPAN_FILTER`]); the benchmark and the tests use
/// the same. Each span keeps its source location and its busy and idle time; the thread is left
/// out.
pub fn span_layer<S>(
    provider: &opentelemetry_sdk::trace::SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use opentelemetry::trace::TracerProvider as _;
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("peerpack"))
        .with_threads(false)
}

/// Where and how spans and metrics are exported over OTLP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Otlp {
    /// The collector's base URL (`http://host:4318` for HTTP, `http://host:4317` for gRPC);
    /// `None`: the exporter reads `OTEL_EXPORTER_OTLP_*` itself.
    pub endpoint: Option<String>,
    /// The transport.
    pub protocol: Protocol,
    /// Export spans.
    pub traces: bool,
    /// Export metrics.
    pub metrics: bool,
    /// How often metrics are pushed.
    pub interval: Duration,
}

/// Why OTLP export could not start.
#[derive(Debug, thiserror::Error)]
#[error("OTLP {signal} exporter: {reason}")]
pub struct ExportError {
    signal: &'static str,
    reason: String,
}

impl Otlp {
    /// The OTLP export the standard variables ask for, if any: `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// (or a per-signal `..._TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`) turns it on,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` picks the transport, `OTEL_TRACES_EXPORTER=none` /
    /// `OTEL_METRICS_EXPORTER=none` turn a signal off, `OTEL_METRIC_EXPORT_INTERVAL`
    /// (milliseconds) sets the push interval, and `OTEL_SDK_DISABLED=true` turns all of it off.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let traces_endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let metrics_endpoint = var("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
        let endpoint = var("OTEL_EXPORTER_OTLP_ENDPOINT");
        if endpoint.is_none() && traces_endpoint.is_none() && metrics_endpoint.is_none() {
            return Ok(None);
        }
        let protocol = match var("OTEL_EXPORTER_OTLP_PROTOCOL") {
            Some(p) => p
                .parse()
                .map_err(|e| format!("OTEL_EXPORTER_OTLP_PROTOCOL: {e}"))?,
            None => Protocol::HttpProtobuf,
        };
        let interval = match var("OTEL_METRIC_EXPORT_INTERVAL") {
            Some(ms) => Duration::from_millis(ms.parse().map_err(|_| {
                format!("OTEL_METRIC_EXPORT_INTERVAL: {ms:?} is not a number of milliseconds")
            })?),
            None => DEFAULT_INTERVAL,
        };
        let off = |v: Option<String>| v.is_some_and(|v| v.eq_ignore_ascii_case("none"));
        Ok(Some(Self {
            // The exporters read the variables (including per-signal endpoints) themselves.
            endpoint: None,
            protocol,
            traces: !off(var("OTEL_TRACES_EXPORTER")),
            metrics: !off(var("OTEL_METRICS_EXPORTER")),
            interval,
        }))
    }

    /// The span exporter's tracer provider, or `None` with traces off.
    pub fn tracer_provider(
        &self,
    ) -> Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>, ExportError> {
        if !self.traces {
            return Ok(None);
        }
        let err = |e: opentelemetry_otlp::ExporterBuildError| ExportError {
            signal: "trace",
            reason: e.to_string(),
        };
        let builder =
            opentelemetry_sdk::trace::SdkTracerProvider::builder().with_resource(resource());
        let provider = match self.protocol {
            Protocol::HttpProtobuf => {
                let mut b = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
                if let Some(base) = &self.endpoint {
                    b = b.with_endpoint(format!("{}/v1/traces", base.trim_end_matches('/')));
                }
                // The default batch processor runs on a thread of its own, with the blocking
                // HTTP client.
                builder.with_batch_exporter(b.build().map_err(err)?).build()
            }
            Protocol::Grpc => {
                let mut b = opentelemetry_otlp::SpanExporter::builder().with_tonic();
                if let Some(base) = &self.endpoint {
                    b = b.with_endpoint(base.clone());
                }
                // tonic needs Tokio: the batch processor runs on the node's runtime.
                let processor =
                    opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
                        b.build().map_err(err)?,
                        opentelemetry_sdk::runtime::Tokio,
                    )
                    .build();
                builder.with_span_processor(processor).build()
            }
        };
        Ok(Some(provider))
    }

    /// Add the periodic metric exporter to a meter provider being built (metrics on).
    pub fn add_metrics(
        &self,
        builder: opentelemetry_sdk::metrics::MeterProviderBuilder,
    ) -> Result<opentelemetry_sdk::metrics::MeterProviderBuilder, ExportError> {
        if !self.metrics {
            return Ok(builder);
        }
        let err = |e: opentelemetry_otlp::ExporterBuildError| ExportError {
            signal: "metric",
            reason: e.to_string(),
        };
        Ok(match self.protocol {
            Protocol::HttpProtobuf => {
                let mut b = opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
                if let Some(base) = &self.endpoint {
                    b = b.with_endpoint(format!("{}/v1/metrics", base.trim_end_matches('/')));
                }
                let reader =
                    opentelemetry_sdk::metrics::PeriodicReader::builder(b.build().map_err(err)?)
                        .with_interval(self.interval)
                        .build();
                builder.with_reader(reader)
            }
            Protocol::Grpc => {
                let mut b = opentelemetry_otlp::MetricExporter::builder().with_tonic();
                if let Some(base) = &self.endpoint {
                    b = b.with_endpoint(base.clone());
                }
                let reader = opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader::builder(
                    b.build().map_err(err)?,
                    opentelemetry_sdk::runtime::Tokio,
                )
                .with_interval(self.interval)
                .build();
                builder.with_reader(reader)
            }
        })
    }
}

/// Default [`Otlp::interval`]: 10 seconds.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_standard_variables_turn_export_on_and_shape_it() {
        assert_eq!(Otlp::from_env(env(&[])).unwrap(), None, "off unless asked");
        let o = Otlp::from_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.protocol, Protocol::Grpc);
        assert_eq!(o.interval, Duration::from_millis(500));
        assert!(!o.traces && o.metrics);
        // A per-signal endpoint alone is enough; the SDK switch wins over everything.
        assert!(
            Otlp::from_env(env(&[(
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "http://x:4318/v1/metrics"
            )]))
            .unwrap()
            .is_some()
        );
        assert_eq!(
            Otlp::from_env(env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
                ("OTEL_SDK_DISABLED", "true"),
            ]))
            .unwrap(),
            None
        );
        let err = Otlp::from_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ]))
        .unwrap_err();
        assert!(err.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{err}");
    }

    #[test]
    fn the_config_file_decides_over_the_variables() {
        let mut c = crate::Config::new("/tmp/x");
        assert_eq!(c.otlp(env(&[])).unwrap(), None);
        let mut f = crate::config::File::default();
        f.telemetry.otlp_endpoint = Some("http://127.0.0.1:4317".into());
        f.telemetry.otlp_protocol = Some(Protocol::Grpc);
        f.telemetry.traces = Some(false);
        c.apply(f, |_| crate::config::Origin::Flag("x".into()))
            .unwrap();
        let o = c
            .otlp(env(&[(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://elsewhere:4318",
            )]))
            .unwrap()
            .unwrap();
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:4317"));
        assert_eq!(o.protocol, Protocol::Grpc);
        assert!(!o.traces && o.metrics);
        let mut bad = crate::config::File::default();
        bad.telemetry.otlp_endpoint = Some("127.0.0.1:4317".into());
        let err = c
            .apply(bad, |_| crate::config::Origin::Flag("x".into()))
            .unwrap_err();
        assert!(err.to_string().contains("telemetry.otlp_endpoint"), "{err}");
    }
}
