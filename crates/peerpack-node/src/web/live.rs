//! `GET /live`: the node's figures as server-sent events, for the pages' script. An event
//! `status` is sent at once and then whenever a figure changed, checked every [`EVERY`]; its
//! data is one JSON object of the figures the network page shows (rates already written for
//! people) and `catalogue`, the catalogue summary, which changes whenever a record is added or
//! replaced (the front page fetches its results again then).
//!
//! A stream ends when the client goes away or the node shuts down. At most [`MAX_STREAMS`] run
//! at once; another gets 503 (the page still works, without live figures).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;

use crate::context::Context;

/// How often the figures are read.
pub const EVERY: Duration = Duration::from_secs(1);
/// Live streams open at most.
pub const MAX_STREAMS: usize = 32;

/// What a stream knows between two reads: the catalogue summary the counts were read at.
#[derive(Default)]
struct Seen {
    /// The catalogue summary (records, hash) at the last count.
    summary: Option<(u64, [u8; 32])>,
    /// Packages and archives then.
    counts: (u64, u64),
    /// Reads since the archives were counted.
    reads: u32,
}

/// The archives are counted again at least every this many reads: installs, pins and garbage
/// collection change them without changing the catalogue.
const ARCHIVES_EVERY: u32 = 10;

/// The figures sent, as JSON. The in-memory figures are read every time; the counts of
/// packages and archives only when the catalogue summary (kept in memory by the store) says
/// the catalogue changed: at 100,000 packages they take tens of milliseconds.
async fn figures(inner: &Arc<Context>, seen: &mut Seen) -> Option<String> {
    let net = inner.net.status().await.ok()?;
    let summary = inner
        .catalogue
        .with_store(|s| Ok(s.db.summary()?))
        .await
        .ok()?;
    seen.reads += 1;
    if seen.summary != Some(summary) || seen.reads >= ARCHIVES_EVERY {
        seen.reads = 0;
        seen.counts = inner
            .catalogue
            .with_store(|s| {
                Ok((
                    s.db.package_count()?,
                    s.blobs.list().map(|l| l.len() as u64).unwrap_or(0),
                ))
            })
            .await
            .ok()?;
        seen.summary = Some(summary);
    }
    let (packages, archives) = seen.counts;
    let (upload, download) = inner.transfers.counters.rates();
    let rate = |r: f64| format!("{}/s", super::pages::size(r.max(0.0) as u64));
    Some(
        serde_json::json!({
            "connected_peers": net.connected_peers,
            "known_peers": inner.peers.with(|b| b.all().count()),
            "routing_table_size": net.routing_table_size,
            "packages": packages,
            "catalogue_size": summary.0,
            "archives": archives,
            "upload_rate": rate(upload),
            "download_rate": rate(download),
            "catalogue": format!("{}:{}", summary.0, hex_of(&summary.1)),
        })
        .to_string(),
    )
}

/// The first bytes of `hash` as hex: enough to tell two catalogues apart.
fn hex_of(hash: &[u8; 32]) -> String {
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Counts a stream as open for as long as it lives.
struct Open(Arc<Context>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.web.live_streams.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The stream of `status` events.
fn events(inner: Arc<Context>) -> impl Stream<Item = Result<Event, Infallible>> {
    let stop = inner.supervisor.token();
    let open = Open(inner);
    futures::stream::unfold(
        (open, None::<String>, true, Seen::default()),
        move |(open, mut last, mut first, mut seen)| {
            let stop = stop.clone();
            async move {
                loop {
                    if !first {
                        tokio::select! {
                            _ = stop.cancelled() => return None,
                            _ = tokio::time::sleep(EVERY) => {}
                        }
                    }
                    first = false;
                    if stop.is_cancelled() {
                        return None;
                    }
                    let Some(now) = figures(&open.0, &mut seen).await else {
                        continue;
                    };
                    if last.as_deref() != Some(now.as_str()) {
                        let event = Event::default().event("status").data(now.clone());
                        last = Some(now);
                        return Some((Ok(event), (open, last, first, seen)));
                    }
                }
            }
        },
    )
}

/// `GET /live`.
pub(super) async fn live(State(inner): State<Arc<Context>>) -> Response {
    let counter: &AtomicUsize = &inner.web.live_streams;
    if counter.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
        counter.fetch_sub(1, Ordering::SeqCst);
        // Not logged as a failure: anyone on this machine can open streams.
        let status = axum::http::StatusCode::SERVICE_UNAVAILABLE;
        return super::html(
            status,
            super::pages::error(
                status,
                &format!("{MAX_STREAMS} live streams are open already; the page works without one"),
            ),
        );
    }
    let mut resp = Sse::new(events(inner.clone()))
        .keep_alive(KeepAlive::default())
        .into_response();
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp
}
