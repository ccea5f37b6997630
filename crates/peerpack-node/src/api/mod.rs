//! The HTTP API under `/v1` (see docs/API.md). JSON in and out; errors are
//! `{"error": {"code", "message"}}` with a matching status.
//!
//! Every handler carries a `#[utoipa::path]` and every body a `ToSchema` derive, so the
//! OpenAPI document at `GET /v1/openapi.json` ([`ApiDoc`]) is built from the types the
//! handlers use.
//!
//! - `access`: who may call (loopback `Host`, same origin, the API token).
//! - `routes`: the handlers, one per route.

mod access;
mod routes;

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use peerpack_api::{ApiError, ErrorDetail};

use crate::context::Context;
use crate::error::Error;

type Shared = State<Arc<Context>>;

/// The HTTP status of an error of `kind`: the one place that decides it, for the API and the
/// web page alike.
pub(crate) fn status_of(kind: crate::error::Kind) -> StatusCode {
    use crate::error::Kind;
    match kind {
        Kind::BadRequest => StatusCode::BAD_REQUEST,
        Kind::Conflict | Kind::UnsafeArchive | Kind::Cancelled => StatusCode::CONFLICT,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::Unauthorized => StatusCode::UNAUTHORIZED,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = status_of(self.kind());
        if status.is_server_error() {
            tracing::error!(error = %self, "API request failed");
        }
        let body = ApiError {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
            },
        };
        (status, Json(body)).into_response()
    }
}

/// The security scheme for the token as `Authorization: Bearer TOKEN`. (`security(...)` in
/// `#[utoipa::path]` takes only literals, so the operations spell both names out.)
const BEARER: &str = "api_token";
/// The security scheme for the token as the `peerpack_token` cookie.
const COOKIE: &str = "api_token_cookie";

/// The API as an OpenAPI 3.1 document, served at `GET /v1/openapi.json`. It is generated from
/// the handlers' `#[utoipa::path]` attributes and the `ToSchema` types they take and answer,
/// so it cannot drift from them.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "peerpack node API",
        description = "The HTTP API of a peerpack node (docs/API.md). Every call that changes something (any method but GET and HEAD) needs the node's API token from DATA_DIR/api-token. Requests must be addressed to a loopback Host; a cross-origin request that changes something is refused.",
    ),
    paths(
        routes::openapi_json, routes::metrics, routes::status, routes::search, routes::info,
        routes::dht_name, routes::dht_providers, routes::publish,
        routes::peers, routes::peer, routes::bootstrap, routes::cancel_install, routes::yank, routes::deprecate,
        routes::install, routes::remove,
        routes::verify, routes::gc,
        routes::pins, routes::pin, routes::unpin, routes::mirrors, routes::mirror,
        routes::unmirror, routes::blocks, routes::unblock,
        routes::trusted, routes::trust, routes::untrust, routes::curator_list, routes::curate,
        routes::ui_link,
    ),
    components(schemas(ApiError, ErrorDetail)),
    modifiers(&TokenSchemes),
)]
pub struct ApiDoc;

/// Adds the two ways to present the API token as security schemes.
struct TokenSchemes;

impl utoipa::Modify for TokenSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The 64 hex digits in DATA_DIR/api-token, as `Authorization: Bearer TOKEN`. Every call but GET and HEAD needs it. An open session of the operator's web page (POST /v1/ui/link) stands for it.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "peerpack_token",
                "The same token as the cookie `peerpack_token`. Accepted, but the node never sets it: a browser sends a host's cookies to every port of it.",
            ))),
        );
    }
}

/// The document, built once.
static DOCUMENT: std::sync::LazyLock<utoipa::openapi::OpenApi> =
    std::sync::LazyLock::new(ApiDoc::openapi);

// Response descriptions shared by the handlers' `#[utoipa::path]` attributes.
const FORBIDDEN: &str = "The request is not addressed to a loopback Host, or it changes something and comes from another origin (`forbidden`).";
const UNAUTHORIZED: &str = "The call changes something and came without the API token, or with a wrong one (`unauthorized`).";
const INTERNAL: &str =
    "A fault inside the node (database, disk); the details are in its log (`internal`).";
const UNAVAILABLE: &str = "The network could not do it now (`unavailable`).";

/// The API router.
pub fn router(inner: Arc<Context>) -> Router {
    use routes::*;
    Router::new()
        .route("/v1/openapi.json", get(openapi_json))
        .route("/v1/status", get(status))
        .route("/metrics", get(metrics))
        .route("/v1/search", get(search))
        .route("/v1/packages/{name}", get(info))
        .route("/v1/dht/names/{name}", get(dht_name))
        .route("/v1/dht/providers/{content_id}", get(dht_providers))
        .route("/v1/publish", post(publish))
        .route("/v1/peers", get(peers))
        .route("/v1/peers/{peer_id}", get(peer))
        .route("/v1/bootstrap", post(bootstrap))
        .route("/v1/install", post(install))
        .route("/v1/install/{id}", axum::routing::delete(cancel_install))
        .route("/v1/yank", post(yank))
        .route("/v1/deprecate", post(deprecate))
        .route("/v1/remove", post(remove))
        .route("/v1/verify", post(verify))
        .route("/v1/gc", post(gc))
        .route("/v1/pins", get(pins).post(pin))
        .route("/v1/pins/{spec}", axum::routing::delete(unpin))
        .route("/v1/mirrors", get(mirrors).post(mirror))
        .route("/v1/mirrors/{rule}", axum::routing::delete(unmirror))
        .route("/v1/blocks", get(blocks))
        .route("/v1/blocks/{peer_id}", axum::routing::delete(unblock))
        .route("/v1/trust", get(trusted).post(trust))
        .route("/v1/trust/{name}", axum::routing::delete(untrust))
        .route("/v1/curate", get(curator_list).post(curate))
        .route("/v1/ui/link", post(ui_link))
        // The web page (docs/WEB.md), behind the same access rules.
        .merge(crate::web::routes())
        .fallback(|| async { Error::NotFound("no such API endpoint; see docs/API.md".into()) })
        .layer(axum::middleware::from_fn_with_state(
            inner.clone(),
            access::same_host_only,
        ))
        // One span per request, around everything above: method, route, status, latency.
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<axum::body::Body>| {
                    let route = req
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
                    tracing::info_span!(
                        "api",
                        method = %req.method(),
                        route,
                        status = tracing::field::Empty,
                    )
                })
                .on_response(
                    |resp: &axum::http::Response<axum::body::Body>,
                     latency: std::time::Duration,
                     span: &tracing::Span| {
                        span.record("status", resp.status().as_u16());
                        tracing::debug!(latency_ms = latency.as_secs_f64() * 1e3, "answered");
                    },
                ),
        )
        .with_state(inner)
}

/// A query string that does not parse is a 400 in the API's error shape.
fn bad_query(e: QueryRejection) -> Error {
    Error::BadRequest(format!("bad query string: {}", e.body_text()))
}

/// So is a path segment that does not decode (not UTF-8 once percent-decoded).
fn bad_path(e: PathRejection) -> Error {
    Error::BadRequest(format!("bad path: {}", e.body_text()))
}

/// A JSON request body as `T`, or a 400 that says what was `expected`. The body must not be an
/// array: serde would read a struct from one (`[true]` for `{"dry_run": true}`), and the API
/// offers only objects.
fn parse_body<T: DeserializeOwned>(
    body: Result<Json<serde_json::Value>, JsonRejection>,
    expected: &str,
) -> Result<T, Error> {
    let bad = |e: &dyn std::fmt::Display| Error::BadRequest(format!("expected {expected}: {e}"));
    let Json(value) = body.map_err(|e| bad(&e))?;
    if value.is_array() {
        return Err(bad(&"the body is an array"));
    }
    serde_json::from_value(value).map_err(|e| bad(&e))
}

/// A JSON request body as the handlers take it, before [`parse_body`].
type Body = Result<Json<serde_json::Value>, JsonRejection>;
