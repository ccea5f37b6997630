//! `peerpack-bench plot`: SVG charts of an `all --json` document, for docs/BENCHMARKS.md.
//!
//! - `latency.svg`: the distribution (share of samples at or under a time) of every latency
//!   with samples in the document: publish to searchable on a node (`propagation`, per
//!   network size) and installs under churn (`churn`);
//! - `dht.svg`: DHT lookup latency (p50 and p99 of get, read by hash, provider lookup)
//!   against network size;
//! - `memory.svg`: an idle node's resident and allocated memory against catalogue size.
//!
//! A chart whose data the document lacks (a harness that failed or did not run) is skipped
//! with a line on stderr.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde_json::Value;

const SIZE: (u32, u32) = (800, 480);
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing failed: {e}")
}

/// Sorted samples of `v` (an array of numbers), or none.
fn samples(v: &Value) -> Option<Vec<f64>> {
    let mut s: Vec<f64> = v.as_array()?.iter().filter_map(Value::as_f64).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    Some(s)
}

fn latency(doc: &Value, out: &Path) -> Result<bool> {
    let mut series: Vec<(String, Vec<f64>)> = Vec::new();
    for r in doc["propagation"].as_array().into_iter().flatten() {
        if let Some(s) = samples(&r["samples_ms"]) {
            series.push((
                format!("publish → searchable on a node, {} nodes", r["nodes"]),
                s,
            ));
        }
    }
    if let Some(s) = samples(&doc["churn"]["samples_ms"]) {
        series.push((
            format!(
                "install while {} of {} nodes crash",
                doc["churn"]["victims"], doc["churn"]["nodes"]
            ),
            s,
        ));
    }
    if series.is_empty() {
        return Ok(false);
    }
    let lo = series
        .iter()
        .map(|(_, s)| s[0])
        .fold(f64::INFINITY, f64::min)
        .max(0.1);
    let hi = series
        .iter()
        .map(|(_, s)| s[s.len() - 1])
        .fold(0.0, f64::max)
        .max(lo * 10.0);
    let root = SVGBackend::new(out, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Latency distributions", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((lo * 0.9..hi * 1.1).log_scale(), 0f64..1f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("milliseconds (log scale)")
        .y_desc("share of samples at or under")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(err)?;
    for (i, (label, s)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let n = s.len() as f64;
        chart
            .draw_series(LineSeries::new(
                s.iter().enumerate().map(|(k, &x)| (x, (k + 1) as f64 / n)),
                colour.stroke_width(2),
            ))
            .map_err(err)?
            .label(format!("{label} ({} samples)", s.len()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(true)
}

fn dht(doc: &Value, out: &Path) -> Result<bool> {
    let Some(runs) = doc["dht"].as_array().filter(|r| !r.is_empty()) else {
        return Ok(false);
    };
    let mut points: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (key, what) in [
        ("get", "get"),
        ("get_hashed", "read by hash"),
        ("providers", "provider lookup"),
    ] {
        for (p, pct) in [("p50_ms", "p50"), ("p99_ms", "p99")] {
            let line: Vec<(f64, f64)> = runs
                .iter()
                .filter_map(|r| Some((r["nodes"].as_f64()?, r[key][p].as_f64()?)))
                .collect();
            points.push((format!("{what} {pct}"), line));
        }
    }
    let max_n = runs
        .iter()
        .filter_map(|r| r["nodes"].as_f64())
        .fold(0.0, f64::max);
    let max_ms = points
        .iter()
        .flat_map(|(_, l)| l.iter().map(|p| p.1))
        .fold(1.0, f64::max);
    let root = SVGBackend::new(out, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "DHT lookup latency against network size",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..max_n * 1.1, 0f64..max_ms * 1.1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("nodes in the network")
        .y_desc("milliseconds")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(err)?;
    for (i, (label, line)) in points.iter().enumerate() {
        let colour = COLOURS[(i / 2) % COLOURS.len()];
        let style = if i % 2 == 0 {
            colour.stroke_width(2)
        } else {
            colour.mix(0.5).stroke_width(2)
        };
        chart
            .draw_series(LineSeries::new(line.iter().copied(), style))
            .map_err(err)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        chart
            .draw_series(line.iter().map(|&p| Circle::new(p, 3, style.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(true)
}

fn memory(doc: &Value, out: &Path) -> Result<bool> {
    let Some(idle) = doc["memory"]["idle"].as_array().filter(|r| !r.is_empty()) else {
        return Ok(false);
    };
    let line = |key: &str| -> Vec<(f64, f64)> {
        idle.iter()
            .filter_map(|r| Some((r["packages"].as_f64()?, r["memory"][key].as_f64()?)))
            .collect()
    };
    let (rss, anon) = (line("rss_mib"), line("anon_mib"));
    let max_p = rss.iter().map(|p| p.0).fold(1.0, f64::max);
    let min_p = rss
        .iter()
        .map(|p| p.0)
        .fold(f64::INFINITY, f64::min)
        .max(1.0);
    let max_m = rss.iter().map(|p| p.1).fold(1.0, f64::max);
    let root = SVGBackend::new(out, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Idle node memory against catalogue size",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((min_p * 0.5..max_p * 2.0).log_scale(), 0f64..max_m * 1.2)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("packages in the catalogue (log scale)")
        .y_desc("MiB")
        .x_labels(4)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(err)?;
    for (i, (label, l)) in [
        ("resident (RSS)", &rss),
        ("of it allocated (anonymous)", &anon),
    ]
    .into_iter()
    .enumerate()
    {
        let colour = COLOURS[i];
        chart
            .draw_series(LineSeries::new(l.iter().copied(), colour.stroke_width(2)))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
        chart
            .draw_series(l.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(true)
}

/// Draw every chart the document at `json` has data for into the directory `out`.
pub fn run(json: &Path, out: &Path) -> Result<()> {
    let doc: Value = serde_json::from_slice(
        &std::fs::read(json).with_context(|| format!("cannot read {}", json.display()))?,
    )
    .with_context(|| format!("{} is not JSON", json.display()))?;
    std::fs::create_dir_all(out)?;
    for (name, draw) in [
        ("latency.svg", latency as fn(&Value, &Path) -> Result<bool>),
        ("dht.svg", dht),
        ("memory.svg", memory),
    ] {
        let path = out.join(name);
        if draw(&doc, &path)? {
            eprintln!("wrote {}", path.display());
        } else {
            eprintln!("skipped {name}: the document has no data for it");
        }
    }
    Ok(())
}
