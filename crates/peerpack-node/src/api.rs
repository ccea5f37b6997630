//! The HTTP API under `/v1` (see docs/API.md). JSON in and out; errors are
//! `{"error": {"code", "message"}}` with a matching status.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::error::Error;
use crate::node::Inner;
use crate::queries::Search;

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
        let body =
            serde_json::json!({ "error": { "code": self.code(), "message": self.to_string() } });
        (status, Json(body)).into_response()
    }
}

/// The API router.
pub fn router(inner: Arc<Inner>) -> Router {
    Router::new()
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

async fn status(State(inner): Shared) -> Result<impl IntoResponse, Error> {
    Ok(Json(inner.status().await?))
}

async fn search(State(inner): Shared, Query(q): Query<Search>) -> Result<impl IntoResponse, Error> {
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

async fn info(State(inner): Shared, Path(name): Path<String>) -> Result<impl IntoResponse, Error> {
    Ok(Json(inner.info(&name).await?))
}

#[derive(Deserialize)]
struct PublishBody {
    path: std::path::PathBuf,
}

async fn publish(
    State(inner): Shared,
    body: Result<Json<PublishBody>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, Error> {
    let Json(body) =
        body.map_err(|e| Error::BadRequest(format!("expected {{\"path\": \"DIR\"}}: {e}")))?;
    if !body.path.is_absolute() {
        return Err(Error::BadRequest(format!(
            "path {} must be absolute: the node does not share the caller's working directory",
            body.path.display()
        )));
    }
    Ok(Json(crate::publish::publish(&inner, body.path).await?))
}

#[derive(Deserialize)]
struct PeersQuery {
    min_reputation: Option<f64>,
}

async fn peers(
    State(inner): Shared,
    Query(q): Query<PeersQuery>,
) -> Result<impl IntoResponse, Error> {
    check_score("min_reputation", q.min_reputation)?;
    Ok(Json(inner.peer_views(q.min_reputation)))
}

async fn peer(State(inner): Shared, Path(id): Path<String>) -> Result<impl IntoResponse, Error> {
    Ok(Json(inner.peer_view(&id)?))
}

#[derive(Deserialize)]
struct BootstrapBody {
    addrs: Vec<String>,
}

async fn bootstrap(
    State(inner): Shared,
    body: Result<Json<BootstrapBody>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, Error> {
    let Json(body) = body.map_err(|e| {
        Error::BadRequest(format!("expected {{\"addrs\": [\"MULTIADDR\", ...]}}: {e}"))
    })?;
    Ok(Json(inner.bootstrap(&body.addrs).await?))
}

#[derive(Deserialize)]
struct InstallQuery {
    /// `ndjson`: stream progress lines, then the result.
    progress: Option<String>,
}

/// Progress lines are sent this often while an install streams.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

async fn install(
    State(inner): Shared,
    Query(q): Query<InstallQuery>,
    body: Result<Json<crate::install::InstallRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Error> {
    let Json(request) = body.map_err(|e| {
        Error::BadRequest(format!(
            "expected {{\"packages\": [\"NAME[@REQ]\", ...], \"to\": \"/abs/dir\", \"lock\": \"...\", \"locked\": false}}: {e}"
        ))
    })?;
    let progress = Arc::new(crate::install::InstallProgress::default());
    if q.progress.as_deref() != Some("ndjson") {
        return Ok(Json(inner.install(request, progress).await?).into_response());
    }
    // Streamed: the install runs on its own task (it finishes even if the client leaves);
    // the response carries a progress line every PROGRESS_EVERY and the result last.
    let task = {
        let (inner, progress) = (inner.clone(), progress.clone());
        tokio::spawn(async move { inner.install(request, progress).await })
    };
    let started = std::time::Instant::now();
    let stream = futures::stream::unfold(Some(task), move |task| {
        let progress = progress.clone();
        async move {
            let mut task = task?;
            let line = tokio::select! {
                done = &mut task => {
                    let value = match done {
                        Ok(Ok(report)) => serde_json::json!({ "result": report }),
                        Ok(Err(e)) => serde_json::json!({ "error": { "code": e.code(), "message": e.to_string() } }),
                        Err(e) => serde_json::json!({ "error": { "code": "internal", "message": e.to_string() } }),
                    };
                    return Some((Ok::<_, std::convert::Infallible>(format!("{value}\n")), None));
                }
                () = tokio::time::sleep(PROGRESS_EVERY) => {
                    let current = progress.current();
                    serde_json::json!({ "progress": {
                        "packages": progress.packages.load(std::sync::atomic::Ordering::Relaxed),
                        "packages_done": progress.packages_done.load(std::sync::atomic::Ordering::Relaxed),
                        "bytes_total": progress.bytes_total.load(std::sync::atomic::Ordering::Relaxed),
                        "bytes_done": progress.bytes_done(),
                        "current": current.as_ref().map(|c| c.0.clone()),
                        "sources": current.map_or(0, |c| c.1),
                        "elapsed_ms": started.elapsed().as_millis() as u64,
                    }})
                }
            };
            Some((Ok(format!("{line}\n")), Some(task)))
        }
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Deserialize)]
struct GcBody {
    #[serde(default)]
    dry_run: bool,
}

async fn gc(State(inner): Shared, body: Option<Json<GcBody>>) -> Result<impl IntoResponse, Error> {
    let dry_run = body.is_some_and(|Json(b)| b.dry_run);
    Ok(Json(inner.gc(dry_run).await?))
}

async fn pins(State(inner): Shared) -> Result<impl IntoResponse, Error> {
    Ok(Json(inner.pins().await?))
}

#[derive(Deserialize)]
struct PinBody {
    package: String,
}

async fn pin(
    State(inner): Shared,
    body: Result<Json<PinBody>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, Error> {
    let Json(body) = body.map_err(|e| {
        Error::BadRequest(format!("expected {{\"package\": \"NAME[@VERSION]\"}}: {e}"))
    })?;
    Ok(Json(inner.pin(&body.package).await?))
}

async fn unpin(State(inner): Shared, Path(spec): Path<String>) -> Result<impl IntoResponse, Error> {
    Ok(Json(inner.unpin(&spec).await?))
}

async fn blocks(State(inner): Shared) -> impl IntoResponse {
    Json(inner.blocked_views())
}

async fn unblock(
    State(inner): Shared,
    Path(peer): Path<String>,
) -> Result<impl IntoResponse, Error> {
    let was = inner.unblock(&peer).await?;
    Ok(Json(
        serde_json::json!({ "peer_id": peer, "was_blocked": was }),
    ))
}

async fn trusted(State(inner): Shared) -> Result<impl IntoResponse, Error> {
    Ok(Json(inner.trusted().await?))
}

#[derive(Deserialize)]
struct TrustBody {
    name: String,
    owner: String,
}

async fn trust(
    State(inner): Shared,
    body: Result<Json<TrustBody>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, Error> {
    let Json(body) = body.map_err(|e| {
        Error::BadRequest(format!(
            "expected {{\"name\": \"NAME\", \"owner\": \"ed25519:<hex>\"}}: {e}"
        ))
    })?;
    Ok(Json(inner.trust(&body.name, &body.owner).await?))
}

async fn untrust(
    State(inner): Shared,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, Error> {
    let removed = inner.untrust(&name).await?;
    Ok(Json(
        serde_json::json!({ "name": name, "removed": removed }),
    ))
}

async fn curator_list(State(inner): Shared) -> Result<impl IntoResponse, Error> {
    Ok(Json(inner.own_curator_list().await?))
}

#[derive(Deserialize)]
struct CurateEntry {
    name: String,
    owner: String,
}

#[derive(Deserialize)]
struct CurateBody {
    #[serde(default)]
    add: Vec<CurateEntry>,
    #[serde(default)]
    remove: Vec<String>,
}

async fn curate(
    State(inner): Shared,
    body: Result<Json<CurateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, Error> {
    let Json(body) = body.map_err(|e| {
        Error::BadRequest(format!(
            "expected {{\"add\": [{{\"name\", \"owner\"}}], \"remove\": [NAME]}}: {e}"
        ))
    })?;
    let add = body.add.into_iter().map(|e| (e.name, e.owner)).collect();
    Ok(Json(inner.curate(add, body.remove).await?))
}
