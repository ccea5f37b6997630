//! `peerpack-bench all`: every harness one after the other, one JSON document, and one summary
//! table: figure, goal, measured, and the earlier system's stated target where it had one.
//!
//! Each harness writes its own JSON, which lands under its name in the document; one that
//! fails is recorded as `{"error": …}`, the others still run, and the command fails at the
//! end naming it. The download harness runs
//! only where nginx is installed. `--quick` runs every harness at tiny sizes (CI's smoke run):
//! its figures mean nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};

/// One row of the summary.
struct Row {
    figure: &'static str,
    goal: &'static str,
    measured: String,
    earlier: &'static str,
}

fn ms(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "—".into(), |x| format!("{x:.2} ms"))
}

/// "p50 / p99" of a latency summary.
fn p50_p99(summary: &Value) -> String {
    format!("{} / {}", ms(&summary["p50_ms"]), ms(&summary["p99_ms"]))
}

/// The entry of `runs` (an array of objects) whose `key` is largest.
fn largest<'a>(runs: &'a Value, key: &str) -> Option<&'a Value> {
    runs.as_array()?
        .iter()
        .max_by_key(|r| r[key].as_u64().unwrap_or(0))
}

fn summary(doc: &Value) -> Vec<Row> {
    let mut rows = Vec::new();
    if let Some(r) = largest(&doc["search"]["runs"], "packages") {
        rows.push(Row {
            figure: "search p50 / p99 (index), largest catalogue",
            goal: "—",
            measured: format!("{} at {} packages", p50_p99(&r["all"]), r["packages"]),
            earlier: "under 100 ms",
        });
    }
    if let Some(r) = largest(&doc["dht"], "nodes") {
        for (figure, key, earlier) in [
            (
                "DHT get p50 / p99, largest network",
                "get",
                "200–500 ms at 1000 peers",
            ),
            (
                "DHT read by hash p50 / p99, largest network",
                "get_hashed",
                "200–500 ms at 1000 peers",
            ),
            (
                "DHT provider lookup p50 / p99, largest network",
                "providers",
                "—",
            ),
            (
                "DHT lookup of a first provider p50 / p99 (as installs ask), largest network",
                "providers_first",
                "—",
            ),
        ] {
            rows.push(Row {
                figure,
                goal: "p50 < 10 ms, p99 < 50 ms at 200 nodes",
                measured: format!("{} at {} nodes", p50_p99(&r[key]), r["nodes"]),
                earlier,
            });
        }
    }
    let procs = &doc["dht-processes"];
    if procs["nodes"].is_u64() {
        for (figure, key) in [
            ("DHT name index read p50 / p99, node processes", "get"),
            ("DHT provider lookup p50 / p99, node processes", "providers"),
            (
                "DHT lookup of a first provider p50 / p99, node processes",
                "providers_first",
            ),
        ] {
            rows.push(Row {
                figure,
                goal: "p50 < 10 ms, p99 < 50 ms at 200 nodes",
                measured: format!(
                    "{} at {} processes ({:.0}% found)",
                    p50_p99(&procs[key]),
                    procs["nodes"],
                    procs[format!("{key}_found")].as_f64().unwrap_or(0.0) * 100.0
                ),
                earlier: "200–500 ms at 1000 peers",
            });
        }
    }
    if let Some(p) = doc["propagation"].as_array() {
        for r in p {
            rows.push(Row {
                figure: "publish to searchable on every node, p50 / p99",
                goal: "p99 < 250 ms at 100 nodes",
                measured: format!("{} at {} nodes", p50_p99(&r["all_nodes"]), r["nodes"]),
                earlier: "1–3 s",
            });
            rows.push(Row {
                figure: "`publish` call p99: new version / new name",
                goal: "< 50 ms at any size",
                measured: format!(
                    "{} / {} at {} nodes",
                    ms(&r["publish_new_version"]["p99_ms"]),
                    ms(&r["publish_new_name"]["p99_ms"]),
                    r["nodes"]
                ),
                earlier: "—",
            });
            rows.push(Row {
                figure: "peers connected per node once settled (max)",
                goal: "bounded: ≤ 50 at 200 nodes",
                measured: format!("{} at {} nodes", r["connections_settled"][2], r["nodes"]),
                earlier: "—",
            });
        }
    }
    if let Some(idle) = doc["memory"]["idle"].as_array() {
        for r in idle {
            rows.push(Row {
                figure: "idle node RSS (of it allocated)",
                goal: "< 25 MB at 10,000 packages, 20 peers",
                measured: format!(
                    "{:.1} MiB ({:.1} MiB) at {} packages, {} peers",
                    r["memory"]["rss_mib"].as_f64().unwrap_or(0.0),
                    r["memory"]["anon_mib"].as_f64().unwrap_or(0.0),
                    r["packages"],
                    r["peers"]
                ),
                earlier: "about 50 MB per peer",
            });
        }
    }
    if let Some(n) = doc["memory"]["network"].as_object() {
        rows.push(Row {
            figure: "memory per node, nodes in one process",
            goal: "—",
            measured: format!(
                "{:.1} MiB at {} nodes",
                n["per_node_mib"].as_f64().unwrap_or(0.0),
                n["nodes"]
            ),
            earlier: "about 50 MB per peer",
        });
    }
    if let Some(s) = doc["restart"]["starts"].as_array().and_then(|s| s.first()) {
        rows.push(Row {
            figure: "restart to first answered search",
            goal: "—",
            measured: format!(
                "{:.0} ms at {} packages",
                s["serving_ms"].as_f64().unwrap_or(0.0),
                doc["restart"]["packages"]
            ),
            earlier: "—",
        });
    }
    let goals = doc["download"]["goals"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let at_64 = goals
        .iter()
        .find(|g| g["archive_bytes"].as_u64().unwrap_or(0) >= 64 << 20)
        .or(goals.last());
    let ratio = |key: &str| match at_64.and_then(|g| g[key].as_f64()) {
        Some(x) => format!(
            "{x:.2}× at {:.0} MiB",
            at_64.map_or(0.0, |g| g["archive_bytes"].as_f64().unwrap_or(0.0)
                / 1048576.0)
        ),
        None => "not run (nginx is not installed)".into(),
    };
    for (figure, key, goal) in [
        (
            "single-provider install / nginx + curl",
            "single_over_nginx",
            "≥ 1.2× at 64 MiB",
        ),
        (
            "download alone / raw TCP copy, 1 provider",
            "download_over_raw",
            "≥ 0.85×",
        ),
        (
            "4 capped providers / 1 capped provider",
            "four_capped_over_one_capped",
            "≥ 3.5×",
        ),
        (
            "single-provider install / sendme receive",
            "single_over_sendme",
            "—",
        ),
    ] {
        rows.push(Row {
            figure,
            goal,
            measured: ratio(key),
            earlier: "—",
        });
    }
    let cli = &doc["cli"];
    if cli["install"].is_object() {
        let at = format!("{} processes", cli["nodes"]);
        for (figure, key, goal, earlier) in [
            (
                "CLI `install` of a small pack (cold), p50 / p99",
                "install",
                "< 25 ms",
                "CLI install 0.5–2 s",
            ),
            (
                "CLI `search`, p50 / p99",
                "search",
                "< 5 ms",
                "search under 100 ms",
            ),
            (
                "CLI `publish` of a new version, p50 / p99",
                "publish_new_version",
                "< 50 ms",
                "—",
            ),
            (
                "CLI `publish` of a new name, p50 / p99",
                "publish_new_name",
                "< 50 ms",
                "—",
            ),
        ] {
            let measured = if key == "search" {
                format!(
                    "{} at {} packages, {at}",
                    p50_p99(&cli[key]),
                    cli["packages"]
                )
            } else {
                format!("{} in {at}", p50_p99(&cli[key]))
            };
            rows.push(Row {
                figure,
                goal,
                measured,
                earlier,
            });
        }
    } else {
        rows.push(Row {
            figure: "CLI install of a small pack",
            goal: "< 25 ms",
            measured: "not run".into(),
            earlier: "CLI install 0.5–2 s",
        });
    }
    let warm = |mode: &str, pack: &str| {
        doc["warm-install"]["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["mode"] == mode && r["pack"] == pack))
            .cloned()
    };
    if let Some(r) = warm("auto", "large") {
        rows.push(Row {
            figure: "warm reinstall of a large pack (`install.link` auto), cold p50 / warm p50",
            goal: "≥ 5× faster than cold",
            measured: format!(
                "{:.1}× ({} / {}, {} MiB, files {}; {})",
                r["speedup"].as_f64().unwrap_or(0.0),
                ms(&r["cold"]["p50_ms"]),
                ms(&r["warm"]["p50_ms"]),
                r["pack_bytes"].as_u64().unwrap_or(0) >> 20,
                r["placed"].as_str().unwrap_or("?"),
                doc["warm-install"]["filesystem"].as_str().unwrap_or("?"),
            ),
            earlier: "—",
        });
    }
    if let Some(r) = warm("auto", "small") {
        rows.push(Row {
            figure: "CLI `install` of a small pack the node holds (warm), p50 / p99",
            goal: "< 10 ms",
            measured: p50_p99(&r["warm"]),
            earlier: "CLI install 0.5–2 s",
        });
    }
    let churn = &doc["churn"];
    if let Some(success) = churn["success"].as_f64() {
        rows.push(Row {
            figure: "installs that succeed while a third of the nodes crash and restart",
            goal: "≥ 99%",
            measured: format!(
                "{:.2}% of {} installs ({} nodes, {} killed); p50 / p99 {}",
                success * 100.0,
                churn["installs"],
                churn["nodes"],
                churn["victims"],
                p50_p99(&churn["latency"])
            ),
            earlier: "—",
        });
    }
    rows
}

/// Run every harness; `quick` at tiny sizes.
pub fn run(json_out: Option<&Path>, quick: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut doc = serde_json::Map::new();
    let mut failed: Vec<String> = Vec::new();
    let started = Instant::now();
    let mut step = |name: &str, f: &mut dyn FnMut(&Path) -> Result<()>| {
        let path = dir.path().join(format!("{name}.json"));
        eprintln!("\n==> {name} ({:.0} s in)", started.elapsed().as_secs_f64());
        let t = Instant::now();
        let value = match f(&path) {
            Ok(()) => std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .unwrap_or_else(|| json!({"error": "the harness wrote no JSON"})),
            Err(e) => {
                eprintln!("{name} failed: {e:#}");
                failed.push(name.to_owned());
                json!({"error": format!("{e:#}")})
            }
        };
        eprintln!("<== {name}: {:.0} s", t.elapsed().as_secs_f64());
        doc.insert(name.to_owned(), value);
    };
    let secs = Duration::from_secs;
    // First: it installs the process's tracing subscriber, which only one harness may do.
    step("dht", &mut |p| {
        let (nodes, keys, queries, settle) = if quick {
            (vec![6], 5, 5, 2)
        } else {
            // 30 records are enough to time 100 queries of each kind from random nodes;
            // at 200 nodes in one process each put takes seconds.
            (vec![50, 200], 30, 100, 30)
        };
        crate::block_on(crate::dht::run(
            &nodes,
            keys,
            queries,
            secs(settle),
            Some(p),
        ))
    });
    step("dht-processes", &mut |p| {
        let (nodes, packs, queries, settle) = if quick {
            (4, 3, 5, 1)
        } else {
            (20, 50, 200, 10)
        };
        crate::block_on(crate::dht_procs::run(
            nodes,
            packs,
            queries,
            secs(settle),
            None,
            Some(p),
        ))
        .map(drop)
    });
    step("search", &mut |p| {
        let (sizes, queries) = if quick {
            (vec![1000], 100)
        } else {
            (vec![10_000, 100_000, 1_000_000], 2000)
        };
        crate::search::run(&sizes, queries, 42, Some(p))
    });
    step("propagation", &mut |p| {
        let (nodes, publishes, settle) = if quick {
            (vec![5], 4, 2)
        } else {
            (vec![100, 200], 12, 60)
        };
        crate::block_on(crate::propagation::run(
            &nodes,
            publishes,
            secs(settle),
            Some(p),
        ))
        .map(drop)
    });
    step("memory", &mut |p| {
        let (sizes, peers, nodes, settle) = if quick {
            (vec![200], 2, 3, 1)
        } else {
            (vec![10_000, 100_000], 20, 100, 10)
        };
        crate::memory::run(&sizes, peers, nodes, secs(settle), None, Some(p)).map(drop)
    });
    step("restart", &mut |p| {
        let packages = if quick { 1000 } else { 100_000 };
        crate::restart::run(packages, 1, 1, None, Some(p))
    });
    step("telemetry", &mut |p| {
        if quick {
            crate::telemetry::run(200, 50, 1, 1, 1, None, Some(p), None)
        } else {
            crate::telemetry::run(10_000, 2000, 64, 3, 2, None, Some(p), None)
        }
    });
    step("cli", &mut |p| {
        let (nodes, packages, rounds) = if quick {
            (3, 200, 3)
        } else {
            (20, 100_000, 50)
        };
        crate::cli::run(nodes, packages, rounds, None, Some(p)).map(drop)
    });
    step("churn", &mut |p| {
        let params = if quick {
            crate::churn::Params {
                nodes: 6,
                packs: 3,
                pack_bytes: 16 * 1024,
                replicas: 1,
                down: secs(1),
                settle: secs(1),
                min_installs: 6,
            }
        } else {
            crate::churn::Params {
                nodes: 50,
                packs: 40,
                pack_bytes: 256 * 1024,
                replicas: 2,
                down: secs(3),
                settle: secs(10),
                min_installs: 200,
            }
        };
        crate::churn::run(&params, None, Some(p)).map(drop)
    });
    step("warm-install", &mut |p| {
        let (size_mib, rounds, small_rounds) = if quick { (1, 1, 2) } else { (64, 5, 30) };
        crate::warm::run_bench(size_mib, rounds, small_rounds, None, None, Some(p)).map(drop)
    });
    let nginx = std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if nginx {
        step("download", &mut |p| {
            let sizes = if quick { vec![1] } else { vec![1, 64, 1024] };
            crate::block_on(crate::download::run(
                &sizes,
                if quick { 1 } else { 3 },
                Some(p),
                None,
            ))
        });
    } else {
        eprintln!("\n(download skipped: nginx is not installed)");
        doc.insert(
            "download".into(),
            json!({"skipped": "nginx is not installed"}),
        );
    }
    let mut doc = Value::Object(doc);
    let rows = summary(&doc);
    println!("\n| figure | goal | measured | earlier system's target |");
    println!("|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} |",
            r.figure, r.goal, r.measured, r.earlier
        );
    }
    doc["summary"] = Value::Array(
        rows.iter()
            .map(|r| json!({"figure": r.figure, "goal": r.goal, "measured": r.measured, "earlier": r.earlier}))
            .collect(),
    );
    doc["quick"] = Value::Bool(quick);
    doc["release_build"] = Value::Bool(!cfg!(debug_assertions));
    doc["total_s"] = json!(started.elapsed().as_secs_f64());
    eprintln!(
        "\nall harnesses in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = json_out {
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)?;
    }
    if !failed.is_empty() {
        anyhow::bail!("these harnesses failed: {}", failed.join(", "));
    }
    Ok(())
}
