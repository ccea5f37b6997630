//! `GET /live`: the node's figures as server-sent events, for the pages' script. An event
//! `status` is sent at once and then whenever a figure changed, checked every [`EVERY`]; its
//! data is one JSON object of the figures the network page shows (rates already written for
//! people) and `catalogue`, which changes whenever a package or version is added (the front
//! page fetches its results again then).
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
use crate::error::Error;

/// How often the figures are read.
pub const EVERY: Duration = Duration::from_secs(1);
/// Live streams open at most.
pub const MAX_STREAMS: usize = 32;

/// The figures sent, as JSON.
async fn figures(inner: &Arc<Context>) -> Option<String> {
    let s = inner.status().await.ok()?;
    let rate = |r: f64| format!("{}/s", super::pages::size(r.max(0.0) as u64));
    Some(
        serde_json::json!({
            "connected_peers": s.connected_peers,
            "known_peers": s.known_peers,
            "routing_table_size": s.routing_table_size,
            "packages": s.packages,
            "catalogue_size": s.catalogue_size,
            "archives": s.archives,
            "upload_rate": rate(s.upload_rate),
            "download_rate": rate(s.download_rate),
            "catalogue": format!("{}:{}", s.packages, s.catalogue_size),
        })
        .to_string(),
    )
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
        (open, None::<String>, true),
        move |(open, mut last, mut first)| {
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
                    let Some(now) = figures(&open.0).await else {
                        continue;
                    };
                    if last.as_deref() != Some(now.as_str()) {
                        let event = Event::default().event("status").data(now.clone());
                        last = Some(now);
                        return Some((Ok(event), (open, last, first)));
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
        return super::error_page(&Error::Unavailable(format!(
            "{MAX_STREAMS} live streams are open already; the page works without one"
        )));
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
