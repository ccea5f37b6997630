//! What an archive holds, for the package page: its file list and its README, rendered from
//! markdown and sanitised.
//!
//! The archive is read from the blob store as a stream, under the extraction limits
//! ([`peerpack_core::archive::contents`]), on a blocking thread and outside the store's lock;
//! the README is rendered there too, once; the result is kept for the [`CACHED`] archives read
//! last, keyed by content id (the same id is the same bytes, so an entry never goes stale).
//!
//! A README is someone else's text shown on this node's origin. It is rendered in two steps,
//! each enough alone:
//! 1. `pulldown-cmark` turns the markdown into HTML, with raw HTML in the markdown passed on as
//!    text (so it is escaped, not interpreted) and images replaced by their alt text (the page
//!    loads nothing from elsewhere);
//! 2. `ammonia` cleans that HTML against an allow-list: only formatting tags, links only to
//!    `http`, `https` and `mailto` (relative links are dropped: they would point into this
//!    node's API), every link `rel="noopener noreferrer nofollow ugc"`, no attributes that
//!    style or script.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use peerpack_core::ContentId;
use peerpack_core::archive::{Contents, ExtractLimits};

use crate::context::Context;

/// Archives whose contents are kept.
pub const CACHED: usize = 32;
/// Entries of an archive listed at most.
pub const MAX_LISTED: usize = 500;
/// Bytes of a README read at most.
pub const MAX_README: usize = 256 * 1024;

/// The contents of the archives read last.
#[derive(Default)]
pub struct Cache {
    inner: Mutex<Recent>,
}

/// The entries of [`Cache`], and their ids oldest first.
#[derive(Default)]
struct Recent {
    by_id: HashMap<ContentId, Arc<Read>>,
    order: VecDeque<ContentId>,
}

impl Cache {
    fn get(&self, id: &ContentId) -> Option<Arc<Read>> {
        peerpack_core::sync::lock(&self.inner)
            .by_id
            .get(id)
            .cloned()
    }

    fn put(&self, id: ContentId, contents: Arc<Read>) {
        let mut recent = peerpack_core::sync::lock(&self.inner);
        if recent.by_id.insert(id, contents).is_none() {
            recent.order.push_back(id);
        }
        while recent.order.len() > CACHED {
            if let Some(old) = recent.order.pop_front() {
                recent.by_id.remove(&old);
            }
        }
    }
}

/// An archive's contents, and its README as sanitised HTML when it is markdown.
pub struct Read {
    /// The entries and the README's text.
    pub contents: Contents,
    /// The README rendered ([`render`]), for a markdown README.
    pub readme_html: Option<String>,
}

/// What the page shows of an archive.
pub enum Shown {
    /// The node does not hold the archive.
    NotHeld,
    /// It holds it, and this is what it holds.
    Held(Arc<Read>),
    /// It holds it but cannot read it (named).
    Unreadable(String),
}

/// The contents of the archive `id`, if this node holds it.
pub async fn of(inner: &Arc<Context>, id: ContentId) -> Shown {
    let held = inner
        .catalogue
        .with_store(move |s| {
            if !s.blobs.contains(&id) {
                return Ok(None);
            }
            // The README the manifest names, if any record of this archive names one.
            let readme =
                s.db.records_with_content(&id)?
                    .into_iter()
                    .find_map(|r| r.manifest.readme);
            Ok(Some((s.blobs.path(&id), readme)))
        })
        .await;
    let (path, readme) = match held {
        Ok(Some(held)) => held,
        Ok(None) => return Shown::NotHeld,
        Err(e) => return Shown::Unreadable(e.to_string()),
    };
    if let Some(c) = inner.web.contents.get(&id) {
        return Shown::Held(c);
    }
    let read = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path)?;
        let contents = peerpack_core::archive::contents(
            std::io::BufReader::new(file),
            &ExtractLimits::default(),
            readme.as_deref(),
            MAX_LISTED,
            MAX_README,
        )
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        // Rendered here, off the async workers, and once: a hostile README may be slow to
        // parse.
        let readme_html = contents
            .readme
            .as_ref()
            .filter(|r| is_markdown(&r.path))
            .map(|r| render(&super::pages::plain(&r.text)));
        Ok::<_, std::io::Error>(Read {
            contents,
            readme_html,
        })
    })
    .await;
    match read {
        Ok(Ok(c)) => {
            let c = Arc::new(c);
            inner.web.contents.put(id, c.clone());
            Shown::Held(c)
        }
        // Removed since (garbage collection): as if never held.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Shown::NotHeld,
        Ok(Err(e)) => Shown::Unreadable(e.to_string()),
        Err(e) => Shown::Unreadable(e.to_string()),
    }
}

/// Whether `url` (absolute) names this machine: `localhost`, a loopback or unspecified address.
fn points_here(url: &str) -> bool {
    let Some(rest) = url
        .split_once("://")
        .map(|(_, rest)| rest.to_ascii_lowercase())
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    let host = host.trim_end_matches('.');
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

/// Whether a README at `path` is markdown (by its name).
pub fn is_markdown(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".md") || lower.ends_with(".markdown")
}

/// `markdown` as sanitised HTML (see the module's notes).
pub fn render(markdown: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let events = Parser::new_ext(markdown, options).filter_map(|event| match event {
        // Raw HTML is shown, not run.
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        // An image becomes its alt text (the text events between these two).
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        other => Some(other),
    });
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer nofollow ugc"))
        .rm_tags(["img"])
        // A link to this machine would be a same-origin visit of the node's own API or
        // pages (a DHT lookup per click): dropped, as relative links are.
        .attribute_filter(|element, attribute, value| {
            if element == "a" && attribute == "href" && points_here(value) {
                None
            } else {
                Some(value.into())
            }
        })
        .clean(&html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_to_this_machine_are_dropped() {
        let out = render(
            "[a](http://127.0.0.1:7780/v1/status) [b](http://localhost:1/) [c](http://[::1]:9/) \
             [d](http://0.0.0.0:80/) [e](https://x@127.9.9.9/) [f](http://app.localhost/) \
             [ok](https://example.org/)",
        );
        assert!(
            !out.contains("href=\"http://127") && !out.contains("localhost"),
            "{out}"
        );
        assert!(!out.contains("[::1]") && !out.contains("0.0.0.0"), "{out}");
        assert!(!out.contains("127.9.9.9"), "{out}");
        assert!(out.contains("href=\"https://example.org/\""), "{out}");
    }

    #[test]
    fn markdown_renders_and_nothing_runs() {
        let out = render(
            "# Title\n\n*em* [ok](https://example.org/x) [js](javascript:alert(1)) [rel](../api)\n\n\
             <script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n![alt text](https://e.org/i.png)\n\n\
             <a href=\"javascript:alert(2)\">x</a> <div style=\"position:fixed\" onclick=\"alert(3)\">d</div>\n\n\
             | a | b |\n|---|---|\n| 1 | 2 |\n",
        );
        assert!(out.contains("<h1>Title</h1>"), "{out}");
        assert!(out.contains("<em>em</em>"), "{out}");
        assert!(
            out.contains(
                r#"<a href="https://example.org/x" rel="noopener noreferrer nofollow ugc">ok</a>"#
            ),
            "{out}"
        );
        assert!(out.contains("<table>"), "{out}");
        assert!(out.contains("alt text"), "{out}");
        // Nothing that could run or load: every tag (a literal `<`; text has `&lt;`) is
        // formatting, and none carries a script, a style or a relative link.
        for tag in out.split('<').skip(1).map(|t| &t[..t.find('>').unwrap()]) {
            let name = tag
                .trim_start_matches('/')
                .split([' ', '/'])
                .next()
                .unwrap();
            assert!(
                [
                    "h1", "p", "em", "a", "table", "thead", "tbody", "tr", "th", "td", "br", "hr"
                ]
                .contains(&name),
                "<{tag}> in {out}"
            );
            for bad in ["javascript", " on", "style", "src", "../"] {
                assert!(!tag.contains(bad), "<{tag}> in {out}");
            }
        }
        // Raw HTML is shown as text.
        assert!(
            out.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{out}"
        );
    }
}
