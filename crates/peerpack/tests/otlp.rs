//! A node's spans and metrics reach a real OpenTelemetry collector, over OTLP/HTTP and over
//! OTLP/gRPC, configured by the standard `OTEL_*` variables alone.
//!
//! The collector is rotel (`pip install rotel`; `.ci/run` installs it and sets `ROTEL_AGENT`),
//! listening on 127.0.0.1, exporting nothing and printing what it receives. Outside CI, with no
//! rotel to be found, the test says so and passes; under CI (`CI` set) it fails.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{NodeProc, bin, free_port, ok, package};

fn rotel() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ROTEL_AGENT") {
        return Some(PathBuf::from(p));
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))",
        ])
        .output()
        .ok()?;
    let p = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && p.exists()).then_some(p)
}

struct Collector {
    child: Child,
    out: PathBuf,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Collector {
    fn start(agent: &Path, dir: &Path, grpc: u16, http: u16) -> Self {
        let out = dir.join("rotel.out");
        let child = Command::new(agent)
            .args(["start", "--exporter", "blackhole"])
            .args(["--debug-log", "traces", "--debug-log", "metrics"])
            .args(["--debug-log-verbosity", "detailed"])
            .arg("--otlp-grpc-endpoint")
            .arg(format!("127.0.0.1:{grpc}"))
            .arg("--otlp-http-endpoint")
            .arg(format!("127.0.0.1:{http}"))
            .arg("--pid-file")
            .arg(dir.join("rotel.pid"))
            .arg("--log-file")
            .arg(dir.join("rotel.log"))
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        for port in [grpc, http] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "rotel did not listen on {port}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Self { child, out }
    }

    fn received(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

/// The names of the spans rotel printed.
fn span_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Name           : "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn spans_and_metrics_reach_a_real_collector_over_otlp_http_and_grpc() {
    let Some(agent) = rotel() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "rotel-agent not found: .ci/run installs it (pip install rotel) and sets ROTEL_AGENT"
        );
        eprintln!("skipped: no rotel-agent (pip install rotel, or set ROTEL_AGENT)");
        return;
    };
    for protocol in ["http/protobuf", "grpc"] {
        let work = tempfile::tempdir().unwrap();
        let (grpc, http) = (free_port(), free_port());
        let collector = Collector::start(&agent, work.path(), grpc, http);
        let port = if protocol == "grpc" { grpc } else { http };
        let data = work.path().join("node");
        std::fs::create_dir_all(&data).unwrap();
        let mut cmd = bin();
        cmd.arg("node")
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{port}"),
            )
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
            .env("OTEL_METRIC_EXPORT_INTERVAL", "500")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let node = NodeProc::spawn(cmd, &data);
        let pkg = package(work.path(), "otlp-pack", "1.0.0", &[], "hello");
        // Waiting for the DHT writes puts them under the publish (without it they run after
        // the answer, in a trace linked to it).
        ok(&data, &["publish", "--wait-dht", pkg.to_str().unwrap()]);
        ok(&data, &["search", "otlp"]);
        // A clean stop flushes both exporters.
        node.stop();

        let start = Instant::now();
        let text = loop {
            let text = collector.received();
            let names = span_names(&text);
            let spans = ["api", "publish_with", "store", "dht.put", "search"]
                .iter()
                .all(|n| names.iter().any(|s| s == n));
            if spans
                && text.contains("Name: peerpack.dht.queries")
                && text.contains("Name: peerpack.publish.duration")
            {
                break text;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{protocol}: the collector did not receive the spans and metrics; it has spans {names:?} and:\n{}",
                &text[..text.len().min(4000)]
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(text.contains("service.name: Str(peerpack)"), "{protocol}");
        // One trace crosses the network actor: the DHT put is a child of the publish.
        let put = text
            .split("Span #")
            .find(|s| s.contains("Name           : dht.put"))
            .unwrap();
        assert!(
            put.lines()
                .any(|l| l.trim().starts_with("Parent ID")
                    && l.trim().len() > "Parent ID      : ".len()),
            "{protocol}: dht.put has a parent: {put}"
        );
        drop(collector);
    }
}
