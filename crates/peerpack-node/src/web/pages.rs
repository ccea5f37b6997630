//! The pages, as `maud` markup. Everything interpolated with `(...)` is escaped.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use peerpack_api::{Info, Search, SearchHit};
use peerpack_core::{PackageName, PackageRecord, PublicKey};

use super::SearchForm;
use super::contents::{self, Shown};
use crate::context::Context;
use crate::error::Error;

/// Results on the front page.
const RESULTS: usize = 50;
/// Longest search accepted from the page, in characters.
const MAX_QUERY: usize = 256;
/// Names listed on a publisher's page.
const MAX_OWNED_SHOWN: usize = 500;
/// Characters of an error message shown (it may quote the request).
const MESSAGE_SHOWN: usize = 300;
/// Characters of a description shown in a result.
const DESCRIPTION_SHOWN: usize = 280;
/// Categories and tags offered as filters beside the results.
const FACETS_SHOWN: usize = 20;
/// Dependent packages listed on a package's page.
const MAX_DEPENDENTS: usize = 200;

/// Which entry of the top navigation is the current page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Nav {
    Search,
    Network,
    Other,
}

fn layout(title: &str, nav: Nav, main: Markup) -> Markup {
    let current = |n: Nav| (n == nav).then_some("page");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · peerpack" }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "peerpack" }
                    nav aria-label="Main" {
                        a href="/" aria-current=[current(Nav::Search)] { "Search" }
                        a href="/network" aria-current=[current(Nav::Network)] { "Network" }
                    }
                }
                main #main { (main) }
                footer.bottom {
                    p {
                        "Served by this node from its own catalogue, which it learns from its peers. "
                        "Install with " code { "peerpack install" } "."
                    }
                }
            }
        }
    }
}

/// A page of `main` under `title`, with no navigation entry current.
pub(super) fn plain_page(title: &str, main: Markup) -> Markup {
    layout(title, Nav::Other, main)
}

/// The page a sign-in answers with: it holds the new session's secret, which the page's
/// script keeps for this origin before going on to the front page.
pub(super) fn signed_in(session: &str) -> Markup {
    layout(
        "Signing in",
        Nav::Other,
        html! {
            h1 { "Signing in" }
            div #session data-session=(session) hidden {}
            p #session-note { "Signing in as this node's operator needs JavaScript, which keeps the session for this page only." }
        },
    )
}

/// What an install from the page did.
pub(super) fn installed(report: &peerpack_api::InstallReport, lock: &std::path::Path) -> Markup {
    layout(
        "Installed",
        Nav::Other,
        html! {
            h1 { "Installed" }
            ul.installed {
                @for p in &report.installed {
                    li {
                        a href={ "/packages/" (p.name) } { (p.name) } " " (p.version) " in " code.wrap { (plain(&p.path)) }
                        @if p.unchanged { " (already there)" }
                        @else if p.cached { " (from this node's store)" }
                        @else { " (" (size(p.fetched_bytes)) " from " (p.sources.len()) " peer" @if p.sources.len() != 1 { "s" } ")" }
                        @if let Some(m) = &p.deprecated { " " span.badge.warn title=(plain(m)) { "deprecated" } }
                    }
                }
            }
            p.note { "The lock file is " code.wrap { (plain(&lock.display().to_string())) } "." }
        },
    )
}

/// A page for an error, with its status.
pub(super) fn error(status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    layout(
        title,
        Nav::Other,
        html! {
            h1 { (status.as_u16()) " " (title) }
            p.error role="alert" { (clip(message, MESSAGE_SHOWN)) }
            p { a href="/" { "Back to search" } }
        },
    )
}

/// `ed25519:1a2b3c4d…`: enough of a key to tell keys apart at a glance.
fn short_key(key: &str) -> String {
    match key.strip_prefix("ed25519:").and_then(|hex| hex.get(..12)) {
        Some(head) if key.len() > "ed25519:".len() + 12 => format!("ed25519:{head}…"),
        _ => plain(key),
    }
}

/// `12D3KooW…` peer ids, shortened the same way.
fn short_peer(peer: &str) -> String {
    if peer.chars().count() > 16 {
        let tail: String = peer.chars().skip(peer.chars().count() - 6).collect();
        plain(&format!(
            "{}…{tail}",
            peer.chars().take(8).collect::<String>()
        ))
    } else {
        plain(peer)
    }
}

/// `blake3:1a2b3c4d5e6f…`.
fn short_id(id: &str) -> String {
    match id.strip_prefix("blake3:").and_then(|hex| hex.get(..12)) {
        Some(head) if id.len() > "blake3:".len() + 12 => format!("blake3:{head}…"),
        _ => plain(id),
    }
}

/// `s` with its bidirectional-text controls (embeddings, overrides, isolates and marks)
/// replaced by U+FFFD: text from the network must not reorder what is shown around it.
pub(super) fn plain(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{061C}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// At most `n` characters of `s` (made [`plain`]), with an ellipsis when cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        plain(s)
    } else {
        let mut out = plain(&s.chars().take(n).collect::<String>());
        out.push('…');
        out
    }
}

/// A byte count for people.
pub(super) fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// `YYYY-MM-DD` (UTC) of Unix seconds.
fn date(unix: u64) -> String {
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let days = (unix / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// A URL worth a link: `http(s)` only, nothing that a browser would read otherwise.
fn linkable(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && !url.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// Percent-encode a query value (everything but the unreserved characters).
fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn tag_link(tag: &str) -> Markup {
    html! { a.tag href={ "/?tag=" (encode(tag)) } { (tag) } }
}

fn category_link(category: &str) -> Markup {
    html! { a.category href={ "/?category=" (encode(category)) } { (category) } }
}

fn owner_link(key: &str) -> Markup {
    html! { a.key href={ "/publishers/" (key) } title=(key) { (short_key(key)) } }
}

/// What a search result shows beyond the hit: the latest record and its best provider score.
struct Detail {
    record: PackageRecord,
    /// The best reputation among the peers known to hold the latest archive, with whether
    /// this node holds it itself.
    best_provider: Option<f64>,
    held_here: bool,
}

pub(super) async fn search(inner: &Arc<Context>, form: SearchForm) -> Result<Markup, Error> {
    if form.q.chars().count() > MAX_QUERY {
        return Err(Error::BadRequest(format!(
            "a search is limited to {MAX_QUERY} characters"
        )));
    }
    let category = form.category.clone().filter(|c| !c.trim().is_empty());
    let tag = form.tag.clone().filter(|t| !t.trim().is_empty());
    let hits = inner
        .search(Search {
            q: form.q.clone(),
            category: category.clone(),
            tags: tag.clone(),
            limit: Some(RESULTS),
            min_reputation: None,
        })
        .await?;
    let details = details(inner, &hits).await?;
    // Categories and tags among every package the search matches, with how many carry each.
    let facets = inner
        .search_facets(
            peerpack_store::SearchQuery {
                text: form.q.clone(),
                category: category.clone(),
                tags: tag.iter().cloned().collect(),
                limit: RESULTS,
            },
            FACETS_SHOWN,
        )
        .await?;
    let (categories, tags) = (facets.categories, facets.tags);
    let filtered = category.is_some() || tag.is_some();
    let heading = if hits.len() >= RESULTS {
        format!("The first {RESULTS} of {} results", facets.matched)
    } else if form.q.trim().is_empty() && !filtered {
        "Packages".to_owned()
    } else {
        format!(
            "{} result{}",
            hits.len(),
            if hits.len() == 1 { "" } else { "s" }
        )
    };
    // A facet link keeps the words and the other filter.
    let keep_category = category
        .as_deref()
        .map(|c| format!("&category={}", encode(c)))
        .unwrap_or_default();
    let keep_tag = tag
        .as_deref()
        .map(|t| format!("&tag={}", encode(t)))
        .unwrap_or_default();
    Ok(layout(
        "Search",
        Nav::Search,
        html! {
            form.search role="search" action="/" method="get" {
                label for="q" { "Search packages" }
                div.row {
                    input #q type="search" name="q" value=(plain(&form.q)) placeholder="axum, ci, react…" autocomplete="off";
                    @if let Some(c) = &category { input type="hidden" name="category" value=(c); }
                    @if let Some(t) = &tag { input type="hidden" name="tag" value=(t); }
                    button type="submit" { "Search" }
                }
            }
            @if filtered {
                p.filters {
                    "Filtered by "
                    @if let Some(c) = &category { "category " strong { (plain(c)) } " " }
                    @if let Some(t) = &tag { "tag " strong { (plain(t)) } " " }
                    a href={ "/?q=" (encode(&form.q)) } { "(clear)" }
                }
            }
            div.results-layout #live-results {
                section.results aria-labelledby="results-heading" {
                    h1 #results-heading { (heading) }
                    @if hits.is_empty() {
                        p.empty { "No package matches. Try fewer words, or another tag." }
                    }
                    ol.hits {
                        @for hit in &hits {
                            li.hit { (result(hit, details.get(&hit.name))) }
                        }
                    }
                }
                @if !categories.is_empty() || !tags.is_empty() {
                    aside.facets aria-label="Filters" {
                        @if !categories.is_empty() {
                            h2 { "Categories" }
                            ul {
                                @for (c, n) in &categories {
                                    li { a href={ "/?q=" (encode(&form.q)) "&category=" (encode(c)) (keep_tag) } { (c) } " " span.count { (n) } }
                                }
                            }
                        }
                        @if !tags.is_empty() {
                            h2 { "Tags" }
                            ul {
                                @for (t, n) in &tags {
                                    li { a href={ "/?q=" (encode(&form.q)) (keep_category) "&tag=" (encode(t)) } { (t) } " " span.count { (n) } }
                                }
                            }
                        }
                        p.note { "Counts are over every package that matches." }
                    }
                }
            }
        },
    ))
}

/// One result.
fn result(hit: &SearchHit, detail: Option<&Detail>) -> Markup {
    html! {
        div.hit-head {
            a.name href={ "/packages/" (hit.name) } { (hit.name) }
            @if !hit.version.is_empty() { " " span.version { (hit.version) } }
            @if hit.contested { " " span.badge.warn { "contested" } }
            @if hit.disputed { " " span.badge.warn { "disputed" } }
        }
        p.description dir="auto" { (clip(&hit.description, DESCRIPTION_SHOWN)) }
        @if let Some(d) = detail {
            @if !d.record.manifest.tags.is_empty() {
                p.tags { @for t in &d.record.manifest.tags { (tag_link(t)) " " } }
            }
            p.meta {
                "owner " (owner_link(&d.record.publisher.to_string()))
                " · "
                @if d.held_here {
                    "held by this node"
                } @else if let Some(score) = d.best_provider {
                    "best provider reputation " (format!("{score:.2}"))
                } @else {
                    "no provider known"
                }
                " · " (hit.providers_online) " online"
            }
        }
    }
}

/// The latest record of every hit (contested names have none), and its providers' best score.
async fn details(
    inner: &Arc<Context>,
    hits: &[SearchHit],
) -> Result<HashMap<String, Detail>, Error> {
    let names: Vec<String> = hits
        .iter()
        .filter(|h| !h.contested)
        .map(|h| h.name.clone())
        .collect();
    let found = inner
        .catalogue
        .with_store(move |s| {
            let mut out = Vec::with_capacity(names.len());
            for n in names {
                let Ok(name) = PackageName::new(&n) else {
                    continue;
                };
                if let Some(r) = s.db.latest(&name)? {
                    let providers = s.db.providers(&r.content_id)?;
                    out.push((n, r, providers));
                }
            }
            Ok(out)
        })
        .await?;
    let me = inner.peer_id.to_string();
    Ok(found
        .into_iter()
        .map(|(n, record, providers)| {
            let held_here = inner.catalogue.blobs.contains(&record.content_id);
            let best_provider = providers
                .iter()
                .filter(|p| **p != me)
                .map(|p| inner.peers.with(|b| b.score_of(p)))
                .max_by(f64::total_cmp);
            (
                n,
                Detail {
                    record,
                    best_provider,
                    held_here,
                },
            )
        })
        .collect())
}

/// The trust state of a name, as `info` reports it, in words.
fn trust_state(info: &Info) -> (&'static str, &'static str) {
    if info.status == "contested" {
        return (
            "contested",
            "Several keys claim this name and nothing this node trusts decides between them; nothing installs under it until you pick an owner (peerpack trust NAME KEY).",
        );
    }
    match info.owner_source.as_deref() {
        Some("trusted") => (
            "pinned",
            "This node's operator pinned the owner (peerpack trust).",
        ),
        Some("curator") => (
            "curated",
            "A curator this node trusts vouches for the owner.",
        ),
        _ if !info.claims.is_empty() => (
            "disputed",
            "The first key seen owns it here; other keys claim it too.",
        ),
        _ => ("sole claimant", "Only this key has claimed the name."),
    }
}

pub(super) async fn package(inner: &Arc<Context>, name: &str) -> Result<Markup, Error> {
    let info = inner.info(name).await?;
    let latest = info.versions.first();
    let (state, explain) = trust_state(&info);
    let install = format!("peerpack install {}", info.name);
    let shown = match latest.and_then(|v| v.content_id.parse::<peerpack_core::ContentId>().ok()) {
        Some(id) => Some(contents::of(inner, id).await),
        None => None,
    };
    let of = info.name.clone();
    let dependents = inner
        .catalogue
        .with_store(move |s| Ok(s.db.dependents(&of, MAX_DEPENDENTS)?))
        .await?;
    Ok(layout(
        &info.name,
        Nav::Other,
        html! {
            article.package {
                header.package-head {
                    h1 { (info.name) @if let Some(v) = latest { " " span.version { (v.version) } } }
                    @if let Some(v) = latest { p.lead dir="auto" { (plain(&v.description)) } }
                }
                section aria-labelledby="install-h" {
                    h2 #install-h { "Install" }
                    div.command {
                        pre { code #install-command { (install) } }
                        button.copy type="button" data-copy="install-command" hidden { "Copy" }
                    }
                    // Shown by the script to the signed-in operator only.
                    div #operator hidden {
                        (operator_forms(&info.name, latest.map(|v| v.version.as_str())))
                    }
                    p.note #read-only { "Read-only. The node's operator can install and pin from here after " code { "peerpack ui" } "." }
                }
                section aria-labelledby="owner-h" {
                    h2 #owner-h { "Owner" }
                    p {
                        @if let Some(owner) = &info.owner {
                            (owner_link(owner)) " "
                        }
                        span.badge.state data-state=(state) { (state) }
                    }
                    p.note { (explain) }
                    @if !info.claims.is_empty() {
                        h3 { "Other claims" }
                        ul.claims {
                            @for c in &info.claims {
                                li {
                                    (owner_link(&c.publisher))
                                    " · seq " (c.seq)
                                    " · versions " (c.versions.join(", "))
                                    " · served by " (c.peers.len()) " peer" @if c.peers.len() != 1 { "s" }
                                }
                            }
                        }
                    }
                }
                @if let Some(v) = latest {
                    section aria-labelledby="about-h" {
                        h2 #about-h { "About " (v.version) }
                        dl.fields {
                            dt { "License" } dd { (plain(&v.license)) }
                            @if !v.authors.is_empty() {
                                dt { "Authors" } dd dir="auto" { (plain(&v.authors.join(", "))) }
                            }
                            @if !v.categories.is_empty() {
                                dt { "Categories" } dd { @for c in &v.categories { (category_link(c)) " " } }
                            }
                            @if !v.tags.is_empty() {
                                dt { "Tags" } dd { @for t in &v.tags { (tag_link(t)) " " } }
                            }
                            @if let Some(u) = &v.homepage {
                                dt { "Home page" } dd { (external(u)) }
                            }
                            @if let Some(u) = &v.repository {
                                dt { "Repository" } dd { (external(u)) }
                            }
                            dt { "Content id" } dd { code title=(v.content_id) { (short_id(&v.content_id)) } }
                        }
                    }
                    section aria-labelledby="deps-h" {
                        h2 #deps-h { "Dependencies" }
                        @if v.dependencies.is_empty() {
                            p.empty { "None." }
                        } @else {
                            ul.deps {
                                @for (dep, req) in &v.dependencies {
                                    li { a href={ "/packages/" (dep) } { (dep) } " " code { (req) } }
                                }
                            }
                        }
                    }
                }
                section aria-labelledby="dependents-h" {
                    h2 #dependents-h { "Dependents" }
                    @if dependents.is_empty() {
                        p.empty { "No package known here depends on it." }
                    } @else {
                        ul.deps.dependents {
                            @for d in &dependents {
                                li {
                                    a href={ "/packages/" (d.name) } { (d.name) } " " (d.version)
                                    " " code { (d.requirement) }
                                    @if d.versions > 1 { " " span.note { "(" (d.versions) " versions)" } }
                                }
                            }
                        }
                        @if dependents.len() == MAX_DEPENDENTS { p.note { "The first " (MAX_DEPENDENTS) " are shown." } }
                    }
                }
                @if let (Some(v), Some(shown)) = (latest, &shown) {
                    (archive_sections(&info.name, &v.version, shown))
                }
                section aria-labelledby="versions-h" {
                    h2 #versions-h { "Versions" }
                    @if info.versions.is_empty() {
                        p.empty { "No version installs under this name here." }
                    } @else {
                        div.table-wrap {
                            table.versions {
                                (thead(&["Version", "Published", "Content id", "Size", "Providers", "Notes"]))
                                tbody {
                                    @for v in &info.versions {
                                        tr {
                                            th scope="row" { (v.version) }
                                            td { time datetime=(date(v.published_at)) { (date(v.published_at)) } }
                                            td { code title=(v.content_id) { (short_id(&v.content_id)) } }
                                            td { (size(v.archive_size)) }
                                            td { (v.providers.len()) }
                                            td {
                                                @if let Some(r) = &v.yanked { span.badge.warn title=(plain(r)) { "yanked" } " " }
                                                @if let Some(m) = &v.deprecated { span.badge.warn title=(plain(m)) { "deprecated" } " " }
                                                @if let Some(r) = &v.unsafe_reason { span.badge.danger title=(plain(r)) { "unsafe archive" } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// Install and pin, for the signed-in operator.
fn operator_forms(name: &str, version: Option<&str>) -> Markup {
    html! {
        form.operator method="post" action="/ui/install" {
            input type="hidden" name="package" value=(name);
            label for="project" { "Install into the project" }
            div.row {
                input #project type="text" name="project" required placeholder="/home/you/projects/app" autocomplete="off";
                button type="submit" { "Install" }
            }
            p.note { "As " code { "peerpack install " (name) } " run there: into its " code { "peerpack_packages/" } ", with its " code { "peerpack.lock" } "." }
        }
        @if let Some(v) = version {
            form.operator method="post" action="/ui/pin" {
                input type="hidden" name="package" value={ (name) "@" (v) };
                button type="submit" { "Pin " (v) } " "
                span.note { "keeps its archive on this node" }
            }
        }
        form.operator method="post" action="/ui/logout" {
            button.quiet type="submit" { "Sign out" }
        }
    }
}

/// The README and file list of the archive of `name`'s `version`, as far as this node holds it.
fn archive_sections(name: &str, version: &str, shown: &Shown) -> Markup {
    let read = match shown {
        Shown::Held(read) => read,
        Shown::NotHeld => {
            return html! {
                section aria-labelledby="readme-h" {
                    h2 #readme-h { "README and files" }
                    p.empty {
                        "This node does not hold the archive of " (version) ". "
                        code { "peerpack install " (name) } " fetches it; its README and files show here then."
                    }
                }
            };
        }
        Shown::Unreadable(e) => {
            return html! {
                section aria-labelledby="readme-h" {
                    h2 #readme-h { "README and files" }
                    p.error { "The archive of " (version) " cannot be read here: " (clip(e, MESSAGE_SHOWN)) }
                }
            };
        }
    };
    let c = &read.contents;
    html! {
        section aria-labelledby="readme-h" {
            h2 #readme-h { "README" }
            @match &c.readme {
                None => p.empty { "The archive of " (version) " has no README." },
                Some(r) => {
                    p.note { code { (plain(&r.path)) } " from the archive of " (version) }
                    @if let Some(rendered) = &read.readme_html {
                        div.readme dir="auto" { (PreEscaped(rendered)) }
                    } @else {
                        pre.readme dir="auto" { (plain(&r.text)) }
                    }
                    @if r.truncated { p.note { "Only the first " (size(contents::MAX_README as u64)) " are shown." } }
                }
            }
        }
        section aria-labelledby="files-h" {
            h2 #files-h { "Files" }
            p.note {
                (c.total_entries) " entr" @if c.total_entries == 1 { "y" } @else { "ies" }
                ", " (size(c.total_bytes)) " of files"
                @if (c.entries.len() as u64) < c.total_entries { "; the first " (c.entries.len()) " are listed" }
            }
            div.table-wrap {
                table.files {
                    (thead(&["Path", "Size"]))
                    tbody {
                        @for e in &c.entries {
                            tr {
                                th scope="row" { code { (plain(&e.path)) @if e.kind == peerpack_core::archive::ListedKind::Dir { "/" } } }
                                td {
                                    @match e.kind {
                                        peerpack_core::archive::ListedKind::File => (size(e.size)),
                                        peerpack_core::archive::ListedKind::Dir => "directory",
                                        peerpack_core::archive::ListedKind::Symlink => "symlink",
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A table's header row of column headers.
fn thead(columns: &[&str]) -> Markup {
    html! { thead { tr { @for c in columns { th scope="col" { (c) } } } } }
}

/// A link out of the page, or the bare text when the URL is not `http(s)`.
fn external(url: &str) -> Markup {
    if linkable(url) {
        html! { a href=(url) rel="nofollow noopener noreferrer" { (plain(url)) } }
    } else {
        html! { span { (plain(url)) } }
    }
}

pub(super) async fn publisher(inner: &Arc<Context>, key: &str) -> Result<Markup, Error> {
    let parsed: PublicKey = key.parse().map_err(|_| {
        Error::BadRequest(format!(
            "{key:?} is not a publisher key (ed25519: and 64 hex digits)"
        ))
    })?;
    let full = parsed.to_string();
    let owned = inner
        .catalogue
        .with_store(move |s| {
            let names = s.db.names_of(&parsed)?;
            let total = names.len();
            let mut out = Vec::new();
            for name in names.into_iter().take(MAX_OWNED_SHOWN) {
                let latest = s.db.latest(&name)?;
                out.push((name, latest));
            }
            Ok((total, out))
        })
        .await?;
    let (total, owned) = owned;
    Ok(layout(
        &short_key(&full),
        Nav::Other,
        html! {
            h1 { "Publisher " code.key title=(full) { (short_key(&full)) } }
            p.note { "Full key: " code.wrap { (full) } }
            h2 { (total) " package" @if total != 1 { "s" } " owned here" }
            @if total > owned.len() { p.note { "The first " (owned.len()) ", in name order." } }
            @if owned.is_empty() {
                p.empty { "This node knows no name this key owns." }
            } @else {
                ul.owned {
                    @for (name, latest) in &owned {
                        li {
                            a.name href={ "/packages/" (name.as_str()) } { (name.as_str()) }
                            @if let Some(r) = latest {
                                " " span.version { (r.manifest.version.to_string()) }
                                p.description dir="auto" { (clip(&r.manifest.description, DESCRIPTION_SHOWN)) }
                            }
                        }
                    }
                }
            }
        },
    ))
}

pub(super) async fn network(inner: &Arc<Context>) -> Result<Markup, Error> {
    let status = inner.status().await?;
    let peers = inner.peer_views(None);
    let connected = peers.iter().filter(|p| p.connected).count();
    Ok(layout(
        "Network",
        Nav::Network,
        html! {
            h1 { "Network" }
            dl.stats {
                div { dt { "Peers connected" } dd data-live="connected_peers" { (status.connected_peers) } }
                div { dt { "Peers known" } dd data-live="known_peers" { (status.known_peers) } }
                div { dt { "Routing table" } dd data-live="routing_table_size" { (status.routing_table_size) } }
                div { dt { "Packages" } dd data-live="packages" { (status.packages) } }
                div { dt { "Versions in the catalogue" } dd data-live="catalogue_size" { (status.catalogue_size) } }
                div { dt { "Archives held" } dd data-live="archives" { (status.archives) } }
                div { dt { "Upload" } dd data-live="upload_rate" { (size(status.upload_rate.max(0.0) as u64)) "/s" } }
                div { dt { "Download" } dd data-live="download_rate" { (size(status.download_rate.max(0.0) as u64)) "/s" } }
            }
            p.note { "This node: " code.wrap { (status.peer_id) } }
            h2 { "Peers" " " span.count { (connected) " connected of " (peers.len()) } }
            @if peers.is_empty() {
                p.empty { "This node has met no peer yet." }
            } @else {
                div.table-wrap {
                    table.peers {
                        (thead(&["Peer", "State", "Agent", "Addresses", "Latency", "Reputation", "Valid / invalid"]))
                        tbody {
                            @for p in &peers {
                                tr {
                                    th scope="row" { code title=(p.peer_id) { (short_peer(&p.peer_id)) } }
                                    td { @if p.connected { "connected" } @else { "known" } }
                                    td dir="auto" { (clip(&p.agent, 64)) }
                                    td.addrs { @for a in p.addresses.iter().take(3) { code { (clip(a, 80)) } br; } }
                                    td { @if let Some(ms) = p.latency_ms { (format!("{ms:.1} ms")) } @else { "–" } }
                                    td { (format!("{:.2}", p.score)) }
                                    td { (p.valid_records) " / " (p.invalid_messages + p.invalid_data) }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_795_467_000), "2026-11-23");
    }

    #[test]
    fn only_http_urls_become_links() {
        assert!(linkable("https://example.org/x"));
        assert!(linkable("http://example.org"));
        for bad in [
            "javascript:alert(1)",
            "JAVASCRIPT:alert(1)",
            "data:text/html,x",
            "https://a b",
            "https://a\nb",
            "//evil.example",
        ] {
            assert!(!linkable(bad), "{bad:?}");
        }
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("a b&c=d\"<"), "a%20b%26c%3Dd%22%3C");
        assert_eq!(encode("rust-cli_1.0~x"), "rust-cli_1.0~x");
    }

    #[test]
    fn sizes_and_short_forms() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(64 << 20), "64.0 MiB");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(
            short_key("ed25519:0123456789abcdef0123"),
            "ed25519:0123456789ab…"
        );
        // Byte 12 inside a character: shown whole rather than cut (and never a panic).
        assert_eq!(short_key("ed25519:aéééééééé"), "ed25519:aéééééééé");
        assert_eq!(short_id("blake3:aéééééééé"), "blake3:aéééééééé");
    }

    #[test]
    fn bidirectional_controls_are_replaced() {
        assert_eq!(plain("abc\u{202E}fdp.exe"), "abc\u{FFFD}fdp.exe");
        assert_eq!(
            plain("\u{2066}x\u{2069}\u{200F}"),
            "\u{FFFD}x\u{FFFD}\u{FFFD}"
        );
        assert_eq!(clip("\u{202E}abcdef", 3), "\u{FFFD}ab…");
    }
}
