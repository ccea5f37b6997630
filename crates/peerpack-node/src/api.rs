//! The HTTP API under `/v1` (see docs/API.md). JSON in and out; errors are
//! `{"error": {"code", "message"}}` with a matching status.
//!
//! Every handler carries a `#[utoipa::path]` and every body a `ToSchema` derive, so the
//! OpenAPI document at `GET /v1/openapi.json` ([`ApiDoc`]) is built from the types the
//! handlers use.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use peerpack_api::{
    ApiError, BootstrapRequest, CurateRequest, CuratorView, Dialled, ErrorDetail, GcReport,
    GcRequest, Info, InstallLine, InstallQuery, InstallReport, InstallRequest, PeerView,
    PeersQuery, Pin, PinRequest, PublishRequest, Published, Search, SearchHit, StatusView,
    TrustRequest, TrustView, Unblocked, Untrusted,
};

use crate::error::Error;
use crate::node::Inner;

type Shared = State<Arc<Inner>>;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Conflict(_) | Error::UnsafeArchive(_) => StatusCode::CONFLICT,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
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
        openapi_json, status, search, info, publish, peers, peer, bootstrap, install, gc, pins,
        pin, unpin, blocks, unblock, trusted, trust, untrust, curator_list, curate,
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
                        "The 64 hex digits in DATA_DIR/api-token, as `Authorization: Bearer TOKEN`. Every call but GET and HEAD needs it.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "peerpack_token",
                "The same token as the cookie `peerpack_token`, for a page the node serves (SameSite=Strict).",
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
pub fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/v1/openapi.json", get(openapi_json))
        .route("/v1/status", get(status))
        .route("/v1/search", get(search))
        .route("/v1/packages/{name}", get(info))
        .route("/v1/publish", post(publish))
        .route("/v1/peers", get(peers))
        .route("/v1/peers/{peer_id}", get(peer))
        .route("/v1/bootstrap", post(bootstrap))
        .route("/v1/install", post(install))
        .route("/v1/gc", post(gc))
        .route("/v1/pins", get(pins).post(pin))
        .route("/v1/pins/{spec}", axum::routing::delete(unpin))
        .route("/v1/blocks", get(blocks))
        .route("/v1/blocks/{peer_id}", axum::routing::delete(unblock))
        .route("/v1/trust", get(trusted).post(trust))
        .route("/v1/trust/{name}", axum::routing::delete(untrust))
        .route("/v1/curate", get(curator_list).post(curate))
        .fallback(|| async { Error::NotFound("no such API endpoint; see docs/API.md".into()) })
        .layer(axum::middleware::from_fn_with_state(
            inner.clone(),
            same_host_only,
        ))
        .with_state(inner)
}

/// Whether `host` (a `Host` header value or an origin's authority: a name or address with an
/// optional port) names this machine's loopback.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // [v6]:port
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Refuse what a web page could send. A `Host` that is not a loopback name or address is how
/// DNS rebinding reaches a local server, so it gets 403 on every request. A request that
/// changes something and carries an `Origin` (every browser sends one with such requests) must
/// come from the API's own origin: a cross-origin form or `fetch` gets 403.
///
/// A request that changes something must also carry the data directory's API token, as
/// `Authorization: Bearer TOKEN` or as the cookie `peerpack_token=TOKEN` (for a browser page
/// the node serves itself, with `SameSite=Strict`): without it, 401.
async fn same_host_only(
    State(inner): Shared,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<Response, Error> {
    use axum::http::{Method, header};
    let headers = req.headers();
    let host = headers.get(header::HOST).map(|h| h.to_str().unwrap_or(""));
    if let Some(host) = host
        && !is_loopback_host(host)
    {
        return Err(Error::Forbidden(format!(
            "the API answers only requests addressed to a loopback host, not {host:?}"
        )));
    }
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    if !reads && let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let same = match (authority, host) {
            (Some(a), Some(h)) => a.eq_ignore_ascii_case(h),
            (Some(a), None) => is_loopback_host(a),
            (None, _) => false,
        };
        if !same {
            return Err(Error::Forbidden(format!(
                "cross-origin request from {origin:?} refused: the API takes orders only from its own origin"
            )));
        }
    }
    if !reads {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix("peerpack_token="));
        match bearer.or(cookie) {
            None => {
                return Err(Error::Unauthorized(
                    "this call needs the node's API token: send `Authorization: Bearer TOKEN` with the token in DATA_DIR/api-token (the peerpack CLI does this itself)".into(),
                ));
            }
            Some(t) if !same_secret(t.trim(), inner.api_token()) => {
                return Err(Error::Unauthorized(
                    "wrong API token: use the one in this node's DATA_DIR/api-token".into(),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(next.run(req).await)
}

/// Compare secrets in time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn loopback_hosts() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:4001",
            "127.8.9.1:80",
            "localhost",
            "LOCALHOST:3000",
            "[::1]",
            "[::1]:4001",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:4001",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.0.0.1:80",
            "[::2]:80",
            "",
            "0.0.0.0:80",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
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

/// This document: the API in OpenAPI 3.1, generated from the handlers and their types.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi",
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object),
        (status = 403, description = FORBIDDEN, body = ApiError),
    ),
)]
async fn openapi_json() -> impl IntoResponse {
    Json(&*DOCUMENT)
}

/// The node's status: identity, addresses, counters.
#[utoipa::path(
    get,
    path = "/v1/status",
    operation_id = "status",
    responses(
        (status = 200, description = "The node's status", body = StatusView),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
        (status = 503, description = "The network task did not answer (`unavailable`).", body = ApiError),
    ),
)]
async fn status(State(inner): Shared) -> Result<impl IntoResponse, Error> {
    Ok(Json(inner.status().await?))
}

/// Search the node's local index, best first.
#[utoipa::path(
    get,
    path = "/v1/search",
    operation_id = "search",
    params(Search),
    responses(
        (status = 200, description = "Matching packages, best first", body = Vec<SearchHit>),
        (status = 400, description = "A parameter out of range or malformed (`bad_request`).", body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
async fn search(
    State(inner): Shared,
    q: Result<Query<Search>, QueryRejection>,
) -> Result<impl IntoResponse, Error> {
    let Query(q) = q.map_err(bad_query)?;
    if let Some(limit) = q.limit
        && !(1..=peerpack_store::search::MAX_LIMIT).contains(&limit)
    {
        return Err(Error::BadRequest(format!(
            "limit {limit} is out of range: 1 to {}",
            peerpack_store::search::MAX_LIMIT
        )));
    }
    check_score("min_reputation", q.min_reputation)?;
    Ok(Json(inner.search(q).await?))
}

/// A score parameter must lie in [0, 1] (NaN does not).
fn check_score(what: &str, v: Option<f64>) -> Result<(), Error> {
    match v {
        Some(x) if !(0.0..=1.0).contains(&x) => Err(Error::BadRequest(format!(
            "{what} {x} is out of range: 0 to 1"
        ))),
        _ => Ok(()),
    }
}

/// Everything known about a name, asking the DHT if the local catalogue does not know it.
#[utoipa::path(
    get,
    path = "/v1/packages/{name}",
    operation_id = "info",
    params(("name" = String, Path, description = "A package name", example = "rust-cli", pattern = "^[a-z0-9][a-z0-9-]{0,63}$")),
    responses(
        (status = 200, description = "The name's owner, claims and versions", body = Info),
        (status = 400, description = "Not a valid package name (`bad_request`).", body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 404, description = "No package by that name here or in the DHT (`not_found`).", body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
        (status = 503, description = UNAVAILABLE, body = ApiError),
    ),
)]
async fn info(
    State(inner): Shared,
    name: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, Error> {
    let Path(name) = name.map_err(bad_path)?;
    Ok(Json(inner.info(&name).await?))
}

/// Pack, sign, store and announce the package in a directory.
#[utoipa::path(
    post,
    path = "/v1/publish",
    operation_id = "publish",
    request_body(
        content = PublishRequest,
        example = json!({"path": "/abs/path/to/package"}),
    ),
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "What was published", body = Published),
        (status = 400, description = "A malformed body, a relative path, or a directory that is not a valid package (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 409, description = "The name is owned by another key or contested, or the version is already published with other content (`conflict`).", body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
        (status = 503, description = UNAVAILABLE, body = ApiError),
    ),
)]
async fn publish(State(inner): Shared, body: Body) -> Result<impl IntoResponse, Error> {
    let body: PublishRequest = parse_body(body, r#"{"path": "/abs/dir"}"#)?;
    if !body.path.is_absolute() {
        return Err(Error::BadRequest(format!(
            "path {} must be absolute: the node does not share the caller's working directory",
            body.path.display()
        )));
    }
    let p = crate::publish::publish(&inner, body.path).await?;
    Ok(Json(Published {
        name: p.name,
        version: p.version,
        content_id: p.content_id.to_string(),
        size: p.size,
        republished: p.republished,
        dht_peers: p.dht_peers,
        announced_to: p.announced_to,
    }))
}

/// Every peer the node has met, connected first, then by score.
#[utoipa::path(
    get,
    path = "/v1/peers",
    operation_id = "peers",
    params(PeersQuery),
    responses(
        (status = 200, description = "Known peers", body = Vec<PeerView>),
        (status = 400, description = "`min_reputation` out of range or malformed (`bad_request`).", body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
    ),
)]
async fn peers(
    State(inner): Shared,
    q: Result<Query<PeersQuery>, QueryRejection>,
) -> Result<impl IntoResponse, Error> {
    let Query(q) = q.map_err(bad_query)?;
    check_score("min_reputation", q.min_reputation)?;
    Ok(Json(inner.peer_views(q.min_reputation)))
}

/// One peer.
#[utoipa::path(
    get,
    path = "/v1/peers/{peer_id}",
    operation_id = "peer",
    params(("peer_id" = String, Path, description = "An Ed25519 peer id", pattern = "^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$")),
    responses(
        (status = 200, description = "The peer", body = PeerView),
        (status = 400, description = "Not a peer id (`bad_request`).", body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 404, description = "This node has never met that peer (`not_found`).", body = ApiError),
    ),
)]
async fn peer(
    State(inner): Shared,
    id: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, Error> {
    let Path(id) = id.map_err(bad_path)?;
    Ok(Json(inner.peer_view(&id)?))
}

/// Dial more peers. Every address is checked before any is dialled.
#[utoipa::path(
    post,
    path = "/v1/bootstrap",
    operation_id = "bootstrap",
    request_body = BootstrapRequest,
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "The peers dialled", body = Vec<Dialled>),
        (status = 400, description = "No address, a malformed one, one without `/p2p/`, or one outside the address policy (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 503, description = "A dial failed (`unavailable`).", body = ApiError),
    ),
)]
async fn bootstrap(State(inner): Shared, body: Body) -> Result<impl IntoResponse, Error> {
    let body: BootstrapRequest = parse_body(body, r#"{"addrs": ["MULTIADDR", ...]}"#)?;
    Ok(Json(inner.bootstrap(&body.addrs).await?))
}

/// Progress lines are sent this often while an install streams.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Resolve, fetch, verify and extract packages into a directory, dependencies first.
#[utoipa::path(
    post,
    path = "/v1/install",
    operation_id = "install",
    params(InstallQuery),
    request_body(
        content = InstallRequest,
        example = json!({"packages": ["rust-cli@^1.2"], "to": "/abs/project/peerpack_packages"}),
    ),
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "What was installed, and the new lock file. With `?progress=ndjson`: progress lines, then `{\"result\": …}` or `{\"error\": …}`.", content(
            (InstallReport = "application/json"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, description = "A malformed body or spec, a relative `to`, a cycle, an unsatisfiable requirement or a bad lock file (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 404, description = "An unknown package (`not_found`).", body = ApiError),
        (status = 409, description = "A record that does not match the lock, a key that does not own the name, a contested name, or a directory peerpack did not install (`conflict`); an archive flagged unsafe (`unsafe_archive`).", body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
        (status = 503, description = "No provider could serve it; the partial download is kept (`unavailable`).", body = ApiError),
    ),
)]
async fn install(
    State(inner): Shared,
    q: Result<Query<InstallQuery>, QueryRejection>,
    body: Body,
) -> Result<Response, Error> {
    let Query(q) = q.map_err(bad_query)?;
    let request: InstallRequest = parse_body(
        body,
        r#"{"packages": ["NAME[@REQ]", ...], "to": "/abs/dir", "lock": "...", "locked": false}"#,
    )?;
    let progress = Arc::new(crate::install::InstallProgress::default());
    if q.progress.as_deref() != Some("ndjson") {
        return Ok(Json(inner.install(request, progress).await?).into_response());
    }
    // Streamed: the install runs on its own task (it finishes even if the client leaves);
    // the response carries a progress line every PROGRESS_EVERY and the result last.
    let task = {
        let (inner, progress) = (inner.clone(), progress.clone());
        let inner2 = inner.clone();
        inner
            .supervisor
            .spawn(async move { inner2.install(request, progress).await })
    };
    let started = std::time::Instant::now();
    let stream = futures::stream::unfold(Some(task), move |task| {
        let progress = progress.clone();
        async move {
            let mut task = task?;
            let line = tokio::select! {
                done = &mut task => {
                    let line = match done {
                        Ok(Some(Ok(report))) => InstallLine::Result(report),
                        Ok(Some(Err(e))) => InstallLine::Error(ErrorDetail { code: e.code().to_owned(), message: e.to_string() }),
                        Ok(None) => InstallLine::Error(ErrorDetail { code: "unavailable".to_owned(), message: "the node is shutting down".to_owned() }),
                        Err(e) => InstallLine::Error(ErrorDetail { code: "internal".to_owned(), message: e.to_string() }),
                    };
                    return Some((Ok::<_, std::convert::Infallible>(ndjson(&line)), None));
                }
                () = tokio::time::sleep(PROGRESS_EVERY) => {
                    let current = progress.current();
                    InstallLine::Progress(peerpack_api::InstallProgress {
                        packages: progress.packages.load(std::sync::atomic::Ordering::Relaxed),
                        packages_done: progress.packages_done.load(std::sync::atomic::Ordering::Relaxed),
                        bytes_total: progress.bytes_total.load(std::sync::atomic::Ordering::Relaxed),
                        bytes_done: progress.bytes_done(),
                        current: current.as_ref().map(|c| c.0.clone()),
                        sources: current.map_or(0, |c| c.1),
                        elapsed_ms: started.elapsed().as_millis() as u64,
                    })
                }
            };
            Some((Ok(ndjson(&line)), Some(task)))
        }
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// Remove cached archives that nothing protects, least recently used first, until the rest fit
/// the cache quota.
#[utoipa::path(
    post,
    path = "/v1/gc",
    operation_id = "gc",
    request_body(content = Option<GcRequest>, description = "Optional (no body, or `null`, is a real collection); `{\"dry_run\": true}` only reports."),
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "What was removed (or would be) and what was kept", body = GcReport),
        (status = 400, description = "A malformed body (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
async fn gc(
    State(inner): Shared,
    body: Result<Option<Json<serde_json::Value>>, JsonRejection>,
) -> Result<impl IntoResponse, Error> {
    // No body, `null` and `{}` all mean a real collection.
    let body: Option<GcRequest> = parse_body(
        body.map(Option::unwrap_or_default),
        r#"no body, null or {"dry_run": BOOL}"#,
    )?;
    let dry_run = body.is_some_and(|b| b.dry_run);
    Ok(Json(inner.gc(dry_run).await?))
}

/// Every pinned version.
#[utoipa::path(
    get,
    path = "/v1/pins",
    operation_id = "pins",
    responses(
        (status = 200, description = "The pins", body = Vec<Pin>),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
async fn pins(State(inner): Shared) -> Result<impl IntoResponse, Error> {
    Ok(Json(inner.pins().await?))
}

/// Pin a version, so that garbage collection keeps its archive.
#[utoipa::path(
    post,
    path = "/v1/pins",
    operation_id = "pin",
    request_body = PinRequest,
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "The pin", body = Pin),
        (status = 400, description = "A malformed body or spec (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 404, description = "No such package or version is known (`not_found`).", body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
async fn pin(State(inner): Shared, body: Body) -> Result<impl IntoResponse, Error> {
    let body: PinRequest = parse_body(body, r#"{"package": "NAME[@VERSION]"}"#)?;
    Ok(Json(inner.pin(&body.package).await?))
}

/// Remove the pins of `NAME@VERSION`, or of every version of `NAME`.
#[utoipa::path(
    delete,
    path = "/v1/pins/{spec}",
    operation_id = "unpin",
    params(("spec" = String, Path, description = "`NAME` or `NAME@VERSION`", example = "rust-cli@1.2.0")),
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "The pins removed", body = Vec<Pin>),
        (status = 400, description = "A malformed spec (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 404, description = "Nothing was pinned (`not_found`).", body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
async fn unpin(
    State(inner): Shared,
    spec: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, Error> {
    let Path(spec) = spec.map_err(bad_path)?;
    Ok(Json(inner.unpin(&spec).await?))
}

/// Peers blocked for misbehaving, soonest to end first.
#[utoipa::path(
    get,
    path = "/v1/blocks",
    operation_id = "blocks",
    responses(
        (status = 200, description = "Blocked peers, with `blocked_until`", body = Vec<PeerView>),
        (status = 403, description = FORBIDDEN, body = ApiError),
    ),
)]
async fn blocks(State(inner): Shared) -> impl IntoResponse {
    Json(inner.blocked_views())
}

/// Lift a peer's block and forgive its invalid messages and data.
#[utoipa::path(
    delete,
    path = "/v1/blocks/{peer_id}",
    operation_id = "unblock",
    params(("peer_id" = String, Path, description = "An Ed25519 peer id", pattern = "^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$")),
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "Whether the peer was blocked", body = Unblocked),
        (status = 400, description = "Not a peer id (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 503, description = "The network task did not answer (`unavailable`).", body = ApiError),
    ),
)]
async fn unblock(
    State(inner): Shared,
    peer: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, Error> {
    let Path(peer_id) = peer.map_err(bad_path)?;
    let was_blocked = inner.unblock(&peer_id).await?;
    Ok(Json(Unblocked {
        peer_id,
        was_blocked,
    }))
}

/// Owners pinned by the user, in name order.
#[utoipa::path(
    get,
    path = "/v1/trust",
    operation_id = "trusted",
    responses(
        (status = 200, description = "The pinned owners", body = Vec<TrustView>),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
async fn trusted(State(inner): Shared) -> Result<impl IntoResponse, Error> {
    Ok(Json(inner.trusted().await?))
}

/// Pin a key as a name's owner.
#[utoipa::path(
    post,
    path = "/v1/trust",
    operation_id = "trust",
    request_body = TrustRequest,
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "The pin", body = TrustView),
        (status = 400, description = "A malformed body, name or key (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 409, description = "The store refused the change (`conflict`).", body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
async fn trust(State(inner): Shared, body: Body) -> Result<impl IntoResponse, Error> {
    let body: TrustRequest = parse_body(body, r#"{"name": "NAME", "owner": "ed25519:<hex>"}"#)?;
    Ok(Json(inner.trust(&body.name, &body.owner).await?))
}

/// Remove the pinned owner of a name.
#[utoipa::path(
    delete,
    path = "/v1/trust/{name}",
    operation_id = "untrust",
    params(("name" = String, Path, description = "A package name", pattern = "^[a-z0-9][a-z0-9-]{0,63}$")),
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "Whether there was a pin", body = Untrusted),
        (status = 400, description = "Not a valid package name (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
async fn untrust(
    State(inner): Shared,
    name: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, Error> {
    let Path(name) = name.map_err(bad_path)?;
    let removed = inner.untrust(&name).await?;
    Ok(Json(Untrusted { name, removed }))
}

/// This node's own curator list.
#[utoipa::path(
    get,
    path = "/v1/curate",
    operation_id = "curator_list",
    responses(
        (status = 200, description = "The list", body = CuratorView),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
async fn curator_list(State(inner): Shared) -> Result<impl IntoResponse, Error> {
    Ok(Json(inner.own_curator_list().await?))
}

/// Change this node's curator list, sign it, store it, put it in the DHT and gossip it.
#[utoipa::path(
    post,
    path = "/v1/curate",
    operation_id = "curate",
    request_body = CurateRequest,
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "The new list", body = CuratorView),
        (status = 400, description = "A malformed body, name or key, or nothing to change (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 409, description = "The store refused the list (`conflict`).", body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
async fn curate(State(inner): Shared, body: Body) -> Result<impl IntoResponse, Error> {
    let body: CurateRequest = parse_body(
        body,
        r#"{"add": [{"name": "NAME", "owner": "ed25519:<hex>"}], "remove": ["NAME"]}"#,
    )?;
    let add = body.add.into_iter().map(|e| (e.name, e.owner)).collect();
    Ok(Json(inner.curate(add, body.remove).await?))
}

/// One line of a streamed answer.
fn ndjson(line: &InstallLine) -> String {
    let mut text = serde_json::to_string(line).unwrap_or_else(|e| {
        format!(
            r#"{{"error":{{"code":"internal","message":"cannot encode a progress line: {e}"}}}}"#
        )
    });
    text.push('\n');
    text
}
