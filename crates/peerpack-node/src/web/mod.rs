//! The web page every node serves on its API listener: what the network offers, rendered on
//! the server from the node's own catalogue (docs/WEB.md).
//!
//! - `/`: search, the front page; `?q=`, `?category=`, `?tag=`.
//! - `/packages/{name}`: every version, the manifest, dependencies and dependents, owner and
//!   trust state, providers, the install command, and, when this node holds the archive, its
//!   README (sanitised, see [`contents`]) and file list.
//! - `/publishers/{key}`: every name a key owns here.
//! - `/network`: this node, its peers and their reputation.
//! - `/live`: the node's figures as server-sent events, for the pages' script ([`live`]).
//! - `/ui/login`, `/ui/logout`, `/ui/install`, `/ui/pin`: the operator's sign-in and actions
//!   ([`operator`]).
//! - `/assets/style.css`, `/assets/app.js`: the one stylesheet and the one script, embedded in
//!   the binary. The script only enhances: every page reads and works without it.
//!
//! Every value that came from the network is escaped by `maud` when it is written into the
//! page, with its bidirectional-text controls replaced; links out of the page are written only
//! for `http(s)` URLs. Each page is sent with a Content-Security-Policy that allows only this
//! node's own stylesheet and script file and nothing inline, so even a value that escaped
//! escaping could run nothing. The pages sit behind the API's access rules ([`crate::api`]):
//! a loopback `Host` only, another site may only link to a page, and no change without the
//! token or the operator's session.

pub(crate) mod contents;
mod live;
pub(crate) mod operator;
mod pages;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::Markup;

use crate::context::Context;
use crate::error::Error;

/// The stylesheet, embedded.
const STYLE: &str = include_str!("style.css");
/// The one script, embedded: copy buttons and live updates (progressive enhancement).
const SCRIPT: &str = include_str!("app.js");

/// What a page may load and do: its own stylesheet, images and one script file, nothing
/// inline, connections (the live figures, the results' refresh) only to this node, no frames,
/// forms only back to this node.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     script-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// What the pages keep in the node's memory.
#[derive(Default)]
pub struct WebState {
    /// The archive contents read last.
    pub(crate) contents: contents::Cache,
    /// Live streams open now.
    pub(crate) live_streams: std::sync::atomic::AtomicUsize,
    /// The operator's sign-in codes and sessions.
    pub(crate) sessions: operator::Sessions,
}

/// The page routes, merged into the API's router so that its access rules apply to them.
pub fn routes() -> Router<Arc<Context>> {
    Router::new()
        .route("/", get(search))
        .route("/packages/{name}", get(package))
        .route("/publishers/{key}", get(publisher))
        .route("/network", get(network))
        .route("/live", get(live::live))
        .route("/ui/login", get(operator::login))
        .route("/ui/logout", post(operator::logout))
        .route("/ui/install", post(operator::install))
        .route("/ui/pin", post(operator::pin))
        .route("/assets/style.css", get(style))
        .route("/assets/app.js", get(script))
        .layer(axum::middleware::from_fn(server_timing))
}

/// Say how long the page took to make (`Server-Timing: render;dur=MS`), for the browser's
/// developer tools and `peerpack-bench web`.
async fn server_timing(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let mut resp = next.run(req).await;
    let took = started.elapsed().as_secs_f64() * 1e3;
    if let Ok(v) = header::HeaderValue::from_str(&format!("render;dur={took:.3}")) {
        resp.headers_mut().insert("server-timing", v);
    }
    resp
}

/// An HTML answer with the page headers (`nosniff` and the resource policy are the access
/// layer's, on every answer).
fn html(status: StatusCode, body: Markup) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    (status, headers, body.into_string()).into_response()
}

/// An error as a page: the status the API would answer, and what went wrong.
pub(crate) fn error_page(e: &Error) -> Response {
    let status = crate::api::status_of(e.kind());
    if status.is_server_error() {
        tracing::error!(error = %e, "web page failed");
    }
    html(status, pages::error(status, &e.to_string()))
}

/// A page's answer: the page, or its error as a page.
fn answer(page: Result<Markup, Error>) -> Response {
    match page {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => error_page(&e),
    }
}

/// The front page's query.
#[derive(Debug, Default, serde::Deserialize)]
pub struct SearchForm {
    /// Free text.
    #[serde(default)]
    pub q: String,
    /// One category.
    pub category: Option<String>,
    /// One tag.
    pub tag: Option<String>,
}

async fn search(
    State(inner): State<Arc<Context>>,
    form: Result<Query<SearchForm>, QueryRejection>,
) -> Response {
    let form = match form {
        Ok(Query(f)) => f,
        Err(e) => {
            return error_page(&Error::BadRequest(format!(
                "bad query string: {}",
                e.body_text()
            )));
        }
    };
    answer(pages::search(&inner, form).await)
}

async fn package(
    State(inner): State<Arc<Context>>,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    match name {
        Ok(Path(name)) => answer(pages::package(&inner, &name).await),
        Err(e) => error_page(&Error::BadRequest(format!("bad path: {}", e.body_text()))),
    }
}

async fn publisher(
    State(inner): State<Arc<Context>>,
    key: Result<Path<String>, PathRejection>,
) -> Response {
    match key {
        Ok(Path(key)) => answer(pages::publisher(&inner, &key).await),
        Err(e) => error_page(&Error::BadRequest(format!("bad path: {}", e.body_text()))),
    }
}

async fn network(State(inner): State<Arc<Context>>) -> Response {
    answer(pages::network(&inner).await)
}

async fn style() -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/css; charset=utf-8"),
        (header::CACHE_CONTROL, "public, max-age=3600"),
    ];
    (headers, STYLE).into_response()
}

async fn script() -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
        (header::CACHE_CONTROL, "public, max-age=3600"),
    ];
    (headers, SCRIPT).into_response()
}
