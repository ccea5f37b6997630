//! `peerpack demo`: a local network in one process, to see peerpack work with no set-up.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use peerpack_api::Search;
use peerpack_node::{Config, Node};

/// How long the demo waits for a package to reach the searching node.
const PATIENCE: Duration = Duration::from_secs(30);

fn packs_dir(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    let here = PathBuf::from("examples/packs");
    if here.is_dir() {
        return Ok(here);
    }
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/packs");
    if built_in.is_dir() {
        return Ok(built_in);
    }
    bail!(
        "cannot find examples/packs; run the demo from the peerpack source tree or pass --packs DIR"
    )
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Run the demo.
pub async fn run(n: usize, keep: bool, packs: Option<PathBuf>) -> Result<()> {
    if n < 2 {
        bail!("--nodes must be at least 2: one to publish, one to search");
    }
    let dir = packs_dir(packs)?;
    let mut packs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("peerpack.toml").is_file())
        .map(|p| std::path::absolute(&p).unwrap_or(p))
        .collect();
    // Dependencies first: a package whose dependencies cannot be resolved is refused.
    packs.sort_by_cached_key(|p| {
        let deps = peerpack_core::Manifest::from_dir(p).map_or(0, |m| m.dependencies.len());
        (deps, p.clone())
    });
    if packs.is_empty() {
        bail!(
            "no packs (directories with peerpack.toml) in {}",
            dir.display()
        );
    }

    let root = tempfile::Builder::new()
        .prefix("peerpack-demo-")
        .tempdir()?;
    println!(
        "starting {n} nodes on 127.0.0.1 (state in {})",
        root.path().display()
    );
    let t = Instant::now();
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let node = Node::start(Config::loopback(root.path().join(format!("node-{i}")))).await?;
        if i > 0 {
            // A chain, plus a link to the first node: every node reachable, few direct links.
            let mut to = vec![nodes_addr(&nodes, i - 1)];
            if i > 1 {
                to.push(nodes_addr(&nodes, 0));
            }
            node.inner().bootstrap(&to).await?;
        }
        nodes.push(node);
    }
    println!("  {n} nodes up and connected in {}", ms(t.elapsed()));
    for (i, node) in nodes.iter().enumerate() {
        println!("  node {i}  {}  api {}", node.peer_id(), node.api_url());
    }

    let searcher = nodes.len() - 1;
    println!(
        "\npublishing {} packs from nodes 0..{}; node {searcher} publishes nothing and searches",
        packs.len(),
        searcher - 1
    );
    let mut propagation = Vec::new();
    for (k, pack) in packs.iter().enumerate() {
        let from = k % searcher;
        let name = peerpack_core::Manifest::from_dir(pack)?.name.to_string();
        // Both clocks start together: the publish call returns once the package is stored and
        // announced (its DHT writes go on in the background).
        let t = Instant::now();
        let (published, found) = tokio::join!(
            async {
                let p = peerpack_node::publish::publish(nodes[from].inner(), pack.clone()).await;
                (p, t.elapsed())
            },
            wait_searchable(&nodes[searcher], &name)
        );
        let (p, publish_time) = (published.0?, published.1);
        match found {
            Some(d) => {
                propagation.push(d);
                println!(
                    "  {:<22} {:<7} from node {from}: searchable on node {searcher} after {:>8} (publish call took {:>8})",
                    p.name,
                    p.version,
                    ms(d),
                    ms(publish_time)
                );
            }
            None => println!(
                "  {} from node {from}: NOT searchable on node {searcher} after {PATIENCE:?}",
                p.name
            ),
        }
    }

    println!("\nsearching on node {searcher}:");
    let inner = nodes[searcher].inner();
    for (q, tags) in [
        ("template", None),
        ("rust", None),
        ("ci workflow", None),
        ("", Some("python")),
    ] {
        let t = Instant::now();
        let hits = inner
            .search(Search {
                q: q.into(),
                tags: tags.map(str::to_owned),
                ..Default::default()
            })
            .await?;
        let label = match tags {
            Some(t) => format!("--tag {t}"),
            None => format!("{q:?}"),
        };
        let names: Vec<&str> = hits.iter().map(|h| h.name.as_str()).collect();
        println!("  {label:<14} {:>8}  {}", ms(t.elapsed()), names.join(", "));
    }
    // Install the pack with the most dependencies on the node that published nothing: its
    // archives come from the nodes that hold them, every piece checked.
    let mut target = None;
    for pack in &packs {
        let m = peerpack_core::Manifest::from_dir(pack)?;
        if target
            .as_ref()
            .is_none_or(|(_, deps): &(String, usize)| m.dependencies.len() > *deps)
        {
            target = Some((m.name.to_string(), m.dependencies.len()));
        }
    }
    if let Some((name, _)) = target {
        let to = root.path().join("installed");
        let t = Instant::now();
        let report = inner
            .install(
                peerpack_node::install::InstallRequest {
                    packages: vec![name.clone()],
                    to: to.clone(),
                    ..Default::default()
                },
                std::sync::Arc::default(),
            )
            .await?;
        println!(
            "\ninstalling {name} on node {searcher} ({} packages with its dependencies) took {}:",
            report.installed.len(),
            ms(t.elapsed())
        );
        for i in &report.installed {
            let from: Vec<String> = i
                .sources
                .iter()
                .map(|s| {
                    nodes
                        .iter()
                        .position(|n| n.peer_id().to_string() == *s)
                        .map_or_else(|| s.clone(), |k| format!("node {k}"))
                })
                .collect();
            println!(
                "  {:<22} {:<7} {:>7} bytes from {} -> {}",
                i.name,
                i.version,
                i.fetched_bytes,
                from.join(", "),
                i.path
            );
        }
    }

    let status = inner.status().await?;
    println!(
        "\nnode {searcher} knows {} versions of {} packages, is connected to {} peers, has {} in its routing table",
        status.catalogue_size, status.packages, status.connected_peers, status.routing_table_size
    );
    if !propagation.is_empty() {
        propagation.sort();
        println!(
            "publish -> searchable elsewhere: median {}, max {} (over {} packs)",
            ms(propagation[propagation.len() / 2]),
            ms(propagation[propagation.len() - 1]),
            propagation.len()
        );
    }

    if keep {
        println!(
            "\nthe network keeps running; browse it at {}/ (node {searcher}'s web page)",
            nodes[searcher].api_url().trim_end_matches('/')
        );
        println!("or try, from another terminal:");
        for (i, node) in nodes.iter().enumerate() {
            println!(
                "  peerpack --data-dir {} status   # node {i}",
                node.data_dir().root().display()
            );
        }
        println!(
            "  peerpack --data-dir {} search template",
            nodes[searcher].data_dir().root().display()
        );
        println!("stop with Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
    }
    for node in nodes {
        node.shutdown().await;
    }
    if propagation.len() < packs.len() {
        bail!(
            "{} of {} packs never became searchable on node {searcher}",
            packs.len() - propagation.len(),
            packs.len()
        );
    }
    Ok(())
}

fn nodes_addr(nodes: &[Node], i: usize) -> String {
    nodes[i].listen_addrs()[0].to_string()
}

/// Time until `node` finds `name` by searching for it, measured from the call.
async fn wait_searchable(node: &Node, name: &str) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < PATIENCE {
        let hits = node
            .inner()
            .search(Search {
                q: name.into(),
                limit: Some(1),
                ..Default::default()
            })
            .await
            .ok()?;
        if hits.first().is_some_and(|h| h.name == name) {
            return Some(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}
