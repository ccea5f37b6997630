//! The web page every node serves on its API listener: what the network offers, rendered on
//! the server from the node's own catalogue (docs/WEB.md).
//!
//! - `/`: search, the front page; `?q=`, `?category=`, `?tag=`.
//! - `/packages/{name}`: every version, the manifest, dependencies and dependents, owner and
//!   trust state, providers, the install command, and, when this node holds the archive, its
//!   README (sanitised, see [`contents`]) and file list.
//! - `/publishers/{key}`: every name a key owns here.
//! - `/network`: this node, its peers and their reputation.
//! - `/assets/style.css`: the one stylesheet, embedded in the binary.
//!
//! Every value that came from the network is escaped by `maud` when it is written into the
//! page, with its bidirectional-text controls replaced; links out of the page are written only
//! for `http(s)` URLs. Each page is sent with a Content-Security-Policy that allows only this
//! node's own stylesheet and no script, so even a value that escaped escaping could run
//! nothing. The pages sit behind the API's access rules ([`crate::api`]): a loopback `Host`
//! only, another site may only link to a page, and no change without the token.

pub(crate) mod contents;
mod pages;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::Markup;

use crate::context::Context;
use crate::error::Error;

/// The stylesheet, embedded.
const STYLE: &str = include_str!("style.css");

/// What a page may load and do: its own stylesheet and images, no script at all, nothing
/// inline, no frames, forms only back to this node.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The page routes, merged into the API's router so that its access rules apply to them.
pub fn routes() -> Router<Arc<Context>> {
    Router::new()
        .route("/", get(search))
        .route("/packages/{name}", get(package))
        .route("/publishers/{key}", get(publisher))
        .route("/network", get(network))
        .route("/assets/style.css", get(style))
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
fn error_page(e: &Error) -> Response {
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
