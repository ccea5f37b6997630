//! Human-readable output.

use peerpack_api::{CuratorView, GcReport, Info, PeerView, SearchHit, StatusView};

fn cut(s: &str, n: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() <= n {
        s
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn ago(secs: i64) -> String {
    format!("{} ago", span(secs))
}

/// A time span for people, in its largest whole unit: 42s, 5m, 6h, 2d.
fn span(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Search results as a table.
pub fn search(hits: &[SearchHit]) {
    if hits.is_empty() {
        println!("no packages match");
        return;
    }
    let w = hits.iter().map(|h| h.name.len()).max().unwrap_or(4).max(4);
    println!("{:<w$}  {:<10}  DESCRIPTION", "NAME", "VERSION");
    for h in hits {
        let (version, mark) = if h.contested {
            ("CONTESTED", "")
        } else if h.disputed {
            (h.version.as_str(), "[disputed] ")
        } else if h.providers_online == 0 {
            (h.version.as_str(), "[offline: no provider connected] ")
        } else {
            (h.version.as_str(), "")
        };
        println!(
            "{:<w$}  {:<10}  {mark}{}",
            h.name,
            version,
            cut(&h.description, 70)
        );
    }
}

/// Package info.
pub fn info(i: &Info) {
    println!("{}", i.name);
    match (&i.owner, i.owner_source.as_deref()) {
        (Some(owner), Some("trusted")) => println!("  owner     {owner} (pinned with `trust`)"),
        (Some(owner), Some("curator")) => println!(
            "  owner     {owner} (vouched for by curator {})",
            i.curator.as_deref().unwrap_or("?")
        ),
        (Some(owner), _) => println!("  owner     {owner} (first seen by this node)"),
        (None, _) => {
            println!("  CONTESTED: several keys claim this name and this node has chosen none.");
            println!(
                "  Pick one: `peerpack install {n} --owner KEY` or `peerpack trust {n} KEY`.",
                n = i.name
            );
        }
    }
    if !i.claims.is_empty() {
        println!(
            "  {}:",
            if i.owner.is_some() {
                "disputed claims by other keys (never used here)"
            } else {
                "claimants"
            }
        );
        for c in &i.claims {
            println!(
                "    {}  index seq {}  versions {}",
                c.publisher,
                c.seq,
                if c.versions.is_empty() {
                    "-".to_owned()
                } else {
                    c.versions.join(", ")
                }
            );
            if !c.peers.is_empty() {
                println!("      served by {}", c.peers.join(", "));
            }
        }
    }
    if let Some(seq) = i.index_seq {
        println!("  index     seq {seq}");
    }
    if i.source == "dht" {
        println!("  (fetched from the DHT just now)");
    }
    // The headline is the version install picks: the highest release, else the highest
    // pre-release.
    let is_pre = |v: &str| peerpack_core::Version::parse(v).is_ok_and(|v| !v.pre.is_empty());
    let headline = i
        .versions
        .iter()
        .find(|v| !is_pre(&v.version) && v.yanked.is_none())
        .or_else(|| i.versions.first());
    if let Some(latest) = headline {
        println!("  latest    {}", latest.version);
        println!("  about     {}", latest.description);
        println!("  license   {}", latest.license);
        println!("  authors   {}", latest.authors.join(", "));
        if !latest.tags.is_empty() {
            println!("  tags      {}", latest.tags.join(", "));
        }
        if !latest.categories.is_empty() {
            println!("  category  {}", latest.categories.join(", "));
        }
        for (k, v) in [("homepage", &latest.homepage), ("repo", &latest.repository)] {
            if let Some(v) = v {
                println!("  {k:<9} {v}");
            }
        }
    }
    if i.versions.is_empty() {
        return;
    }
    println!("  versions:");
    for v in &i.versions {
        println!(
            "    {:<10} {}  {} bytes  {} provider(s){}",
            v.version,
            v.content_id,
            v.archive_size,
            v.providers.len(),
            if is_pre(&v.version) {
                "  (pre-release)"
            } else {
                ""
            }
        );
        if !v.dependencies.is_empty() {
            let deps: Vec<String> = v
                .dependencies
                .iter()
                .map(|(k, r)| format!("{k} {r}"))
                .collect();
            println!("               depends on {}", deps.join(", "));
        }
        if let Some(reason) = &v.yanked {
            println!("               YANKED{}", notice(reason));
        }
        if let Some(message) = &v.deprecated {
            println!("               deprecated{}", notice(message));
        }
        if let Some(reason) = &v.unsafe_reason {
            println!("               UNSAFE: {reason}");
        }
    }
}

/// ": TEXT", or nothing for an empty text.
pub fn notice(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// Peers as a table.
pub fn peers(peers: &[PeerView]) {
    if peers.is_empty() {
        println!("no peers known yet; connect to one with `peerpack bootstrap MULTIADDR`");
        return;
    }
    println!(
        "{:<54} {:<5} {:<8} {:>9} {:>5} {:>6} {:>4} {:>9} {:>9} {:>3}  {:<22} ADDRESS",
        "PEER",
        "CONN",
        "SEEN",
        "LATENCY",
        "SCORE",
        "PIECES",
        "FAIL",
        "SERVED",
        "RESPONSE",
        "BAD",
        "AGENT"
    );
    for p in peers {
        let latency = p.latency_ms.map_or("-".into(), |ms| format!("{ms:.1} ms"));
        println!(
            "{:<54} {:<5} {:<8} {:>9} {:>5.2} {:>6} {:>4} {:>9} {:>9} {:>3}  {:<22} {}",
            p.peer_id,
            if p.connected { "yes" } else { "no" },
            ago(p.last_seen_ago_s),
            latency,
            p.score,
            p.downloads_ok,
            p.downloads_failed,
            bytes(p.bytes_served.max(0) as u64),
            p.response_ms.map_or("-".into(), |ms| format!("{ms:.1} ms")),
            p.invalid_data,
            cut(&p.agent, 22),
            p.addresses.first().map(String::as_str).unwrap_or("-")
        );
    }
}

/// `peerpack dht providers`.
pub fn dht_providers(p: &peerpack_api::DhtProviders) {
    let how = if p.first {
        "first provider"
    } else {
        "whole query"
    };
    if p.providers.is_empty() {
        println!(
            "no provider of {} found in the DHT ({how}, {:.1} ms)",
            p.content_id, p.took_ms
        );
        return;
    }
    println!(
        "{} provider{} of {} ({how}, {:.1} ms)",
        p.providers.len(),
        if p.providers.len() == 1 { "" } else { "s" },
        p.content_id,
        p.took_ms
    );
    for peer in &p.providers {
        println!("  {peer}");
    }
}

/// `peerpack dht name`.
pub fn dht_name(n: &peerpack_api::DhtName) {
    match n.claims.len() {
        0 => println!(
            "no index record of {} in the DHT ({:.1} ms)",
            n.name, n.took_ms
        ),
        1 => println!("{}: one key claims it ({:.1} ms)", n.name, n.took_ms),
        k => println!(
            "{}: {k} keys claim it; the highest seq first ({:.1} ms)",
            n.name, n.took_ms
        ),
    }
    for c in &n.claims {
        println!("  {}  seq {}", c.publisher, c.seq);
        println!("    versions  {}", c.versions.join(", "));
        println!("    served by {}", c.peers.join(", "));
    }
    if n.invalid > 0 {
        println!(
            "  {} invalid value{} ignored (their peers were marked down)",
            n.invalid,
            if n.invalid == 1 { "" } else { "s" }
        );
    }
}

/// One peer in full.
pub fn peer(p: &PeerView) {
    println!("{}", p.peer_id);
    println!("  connected         {}", p.connected);
    println!("  score             {:.3}", p.score);
    println!(
        "  agent             {}",
        if p.agent.is_empty() { "-" } else { &p.agent }
    );
    println!(
        "  protocol version  {}",
        if p.protocol_version.is_empty() {
            "-"
        } else {
            &p.protocol_version
        }
    );
    println!(
        "  latency           {}",
        p.latency_ms.map_or("-".into(), |ms| format!("{ms:.2} ms"))
    );
    println!("  last seen         {}", ago(p.last_seen_ago_s));
    println!("  connections       {}", p.connections);
    println!("  valid records     {}", p.valid_records);
    println!("  invalid messages  {}", p.invalid_messages);
    println!("  pieces delivered  {}", p.downloads_ok);
    println!("  requests failed   {}", p.downloads_failed);
    println!(
        "  bytes served      {}",
        bytes(p.bytes_served.max(0) as u64)
    );
    println!(
        "  response time     {}",
        p.response_ms
            .map_or("-".into(), |ms| format!("{ms:.1} ms (moving average)"))
    );
    println!("  invalid data      {}", p.invalid_data);
    println!("  addresses");
    for a in &p.addresses {
        println!("    {a}");
    }
}

/// Node status.
pub fn status(s: &StatusView) {
    println!("peer id          {}", s.peer_id);
    println!("publisher key    {}", s.publisher);
    println!("api              {}", s.api);
    println!("listening on");
    for a in &s.listen_addrs {
        println!("  {a}");
    }
    println!(
        "connected peers  {} ({} known)",
        s.connected_peers, s.known_peers
    );
    println!(
        "catalogue        {} versions of {} packages",
        s.catalogue_size, s.packages
    );
    println!("routing table    {} peers", s.routing_table_size);
    for b in &s.bootstrap {
        if b.connected {
            println!("bootstrap        {} (connected)", b.address);
        } else {
            let when = b
                .retry_in_s
                .map_or("dialling now".to_owned(), |s| format!("retrying in {s}s"));
            println!(
                "bootstrap        {} UNREACHABLE after {} attempt(s), {when}: {}",
                b.address,
                b.failures,
                b.last_error.as_deref().unwrap_or("-")
            );
        }
    }
    println!("address policy   {}", s.policy);
    println!("uptime           {}s", s.uptime_s);
    println!("archives         {}", s.archives);
    println!(
        "transfer         {} uploaded, {} downloaded ({} downloads, {} failed)",
        bytes(s.bytes_uploaded),
        bytes(s.bytes_downloaded),
        s.downloads_ok,
        s.downloads_failed
    );
    println!(
        "transfer rate    {}/s up, {}/s down (last 10 s)",
        bytes(s.upload_rate as u64),
        bytes(s.download_rate as u64)
    );
    for q in &s.dht_queries {
        let total: u64 = q.results.values().sum();
        if total == 0 {
            println!("dht {:<12} none yet", q.kind);
            continue;
        }
        let results: Vec<String> = q.results.iter().map(|(r, n)| format!("{n} {r}")).collect();
        let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1} ms"));
        println!(
            "dht {:<12} {} (p50 {}, p99 {})",
            q.kind,
            results.join(", "),
            ms(q.p50_ms),
            ms(q.p99_ms)
        );
    }
    println!(
        "gossip           {} accepted, {} rejected, {} ignored",
        s.gossip.accepted, s.gossip.rejected, s.gossip.ignored
    );
    if s.refusals.is_empty() {
        println!("refused          nothing");
    }
    for r in &s.refusals {
        let via = if r.via.is_empty() {
            String::new()
        } else {
            format!(" via {}", r.via)
        };
        println!("refused          {} {}{via}: {}", r.count, r.what, r.reason);
    }
    if s.blocked_peers > 0 {
        println!("blocked peers    {}", s.blocked_peers);
    }
    if let Some(limit) = s.upload_limit {
        println!("upload limit     {}/s", bytes(limit));
    }
    for (id, total, done) in &s.downloading {
        println!(
            "downloading      {id} {} of {}",
            bytes(*done),
            bytes(*total)
        );
    }
    println!(
        "record cache     {} hits, {} misses, {} names",
        s.record_cache.hits, s.record_cache.misses, s.record_cache.entries
    );
    dht_status(&s.dht);
}

/// The DHT part of `status`: what the node holds for others and its republishing rounds.
fn dht_status(d: &peerpack_api::DhtView) {
    println!(
        "dht held         {} provider records of other peers (at most {}); provides {} archives",
        d.provider_records, d.max_provider_records, d.provided
    );
    for (label, what, round, next) in [
        (
            "republish",
            "records put",
            &d.records_round,
            d.next_records_in_s,
        ),
        (
            "reprovide",
            "archives announced",
            &d.archives_round,
            d.next_archives_in_s,
        ),
    ] {
        let last = round.as_ref().map_or_else(
            || "none since start".to_owned(),
            |r| {
                let failed = if r.failed > 0 {
                    format!(", {} FAILED", r.failed)
                } else {
                    String::new()
                };
                format!(
                    "{} {what} {} ({} ms{failed})",
                    r.done,
                    ago(i64::try_from(r.ago_s).unwrap_or(i64::MAX)),
                    r.took_ms
                )
            },
        );
        let next = match next {
            _ if d.waiting_for_peer => "due, waiting for a first peer".to_owned(),
            Some(s) => format!("next in {}", span(i64::try_from(s).unwrap_or(i64::MAX))),
            None => "not scheduled".to_owned(),
        };
        println!("dht {label:<12} {last}; {next}");
    }
}

/// A byte count for people: 1.5 MiB.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// What `gc` did.
pub fn gc(r: &GcReport) {
    let verb = if r.dry_run { "would remove" } else { "removed" };
    for x in &r.removed {
        println!(
            "{verb} {} ({}) {}",
            x.content_id,
            bytes(x.archive_size),
            x.packages.join(", ")
        );
    }
    println!(
        "{verb} {} archive(s), {}; kept {} published, installed or pinned ({}) and {} of cache (quota {})",
        r.removed.len(),
        bytes(r.freed),
        r.protected,
        bytes(r.protected_bytes),
        bytes(r.cached_bytes),
        bytes(r.quota)
    );
}

/// A curator list.
pub fn curator(c: &CuratorView) {
    println!("curator {} (list seq {})", c.curator, c.seq);
    if c.entries.is_empty() {
        println!("  vouches for no name yet; add one with `peerpack curate NAME=KEY`");
    }
    for (name, owner) in &c.entries {
        println!("  {name}  {owner}");
    }
    if c.seq > 0 && !c.trusted_here {
        println!("  (this node does not follow its own list: add the key under [trust] curators)");
    }
}

/// What `mirror` did.
pub fn mirror(r: &peerpack_api::MirrorReport) {
    let what = match (&r.rule.name, &r.rule.owner) {
        (Some(n), _) => n.clone(),
        (_, Some(k)) => format!("every package of {k}"),
        _ => String::new(),
    };
    let already = if r.added { "" } else { " (already mirrored)" };
    println!("mirroring {what}{already}; new versions are fetched as they are announced");
    if r.versions.is_empty() {
        println!("  no version is known yet");
    }
    for v in &r.versions {
        let why = v
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        println!("  {:<8} {} {}{why}", v.state, v.name, v.version);
    }
}

/// What `yank` or `deprecate` changed; `nothing` when it changed nothing.
pub fn amended(a: &peerpack_api::Amended, verb: &str, nothing: &str) {
    if a.versions.is_empty() {
        println!("{nothing}");
    } else {
        println!(
            "{verb} {} {} (index seq {}, announced to {} peer(s))",
            a.name,
            a.versions.join(", "),
            a.index_seq,
            a.announced_to
        );
    }
}
