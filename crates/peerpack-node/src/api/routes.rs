//! The handlers, one per route, each with its `#[utoipa::path]`.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use peerpack_api::{
    Amended, ApiError, BootstrapRequest, CurateRequest, CuratorView, DeprecateRequest, DhtName,
    DhtProviders, DhtProvidersQuery, Dialled, ErrorDetail, GcReport, GcRequest, Info,
    InstallCancelled, InstallLine, InstallQuery, InstallReport, InstallRequest, MirrorReport,
    MirrorRequest, MirrorView, PeerView, PeersQuery, Pin, PinRequest, PublishRequest, Published,
    RemoveReport, RemoveRequest, Search, SearchHit, StatusView, TrustRequest, TrustView, UiLink,
    Unblocked, Untrusted, VerifyReport, VerifyRequest, YankRequest,
};

use super::{
    Body, DOCUMENT, FORBIDDEN, INTERNAL, Shared, UNAUTHORIZED, UNAVAILABLE, bad_path, bad_query,
    parse_body,
};
use crate::error::Error;

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
pub(super) async fn openapi_json() -> impl IntoResponse {
    Json(&*DOCUMENT)
}

/// The node's metrics in the Prometheus text format: peerpack's own, then libp2p's.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    responses(
        (status = 200, description = "Every metric, in the Prometheus text format (version 0.0.4)", content_type = "text/plain", body = String),
        (status = 403, description = FORBIDDEN, body = ApiError),
    ),
)]
pub(super) async fn metrics(State(inner): Shared) -> Result<impl IntoResponse, Error> {
    let text =
        crate::telemetry::blocking("metrics.collect", move || inner.telemetry.prometheus_text())
            .await
            .map_err(|e| Error::task("collecting metrics", e))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
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
pub(super) async fn status(State(inner): Shared) -> Result<impl IntoResponse, Error> {
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
pub(super) async fn search(
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
pub(super) async fn info(
    State(inner): Shared,
    name: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, Error> {
    let Path(name) = name.map_err(bad_path)?;
    Ok(Json(inner.info(&name).await?))
}

/// What the DHT holds for a name now: every key's index record, read afresh.
#[utoipa::path(
    get,
    path = "/v1/dht/names/{name}",
    operation_id = "dht_name",
    params(("name" = String, Path, description = "A package name", example = "rust-cli", pattern = "^[a-z0-9][a-z0-9-]{0,63}$")),
    responses(
        (status = 200, description = "The claims found (none if the DHT holds no index record of the name) and the time the query took", body = DhtName),
        (status = 400, description = "Not a valid package name (`bad_request`).", body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 503, description = UNAVAILABLE, body = ApiError),
    ),
)]
pub(super) async fn dht_name(
    State(inner): Shared,
    name: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, Error> {
    let Path(name) = name.map_err(bad_path)?;
    let name = crate::names::parse_name(&name)?;
    Ok(Json(crate::lookup::dht_name(&inner, &name).await?))
}

/// Who the DHT says holds an archive now.
#[utoipa::path(
    get,
    path = "/v1/dht/providers/{content_id}",
    operation_id = "dht_providers",
    params(
        ("content_id" = String, Path, description = "An archive's content id", pattern = "^blake3:[0-9a-f]{64}$"),
        DhtProvidersQuery,
    ),
    responses(
        (status = 200, description = "The providers found (none if nobody announced the archive) and the time the query took", body = DhtProviders),
        (status = 400, description = "Not a content id, or a malformed query (`bad_request`).", body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 503, description = UNAVAILABLE, body = ApiError),
    ),
)]
pub(super) async fn dht_providers(
    State(inner): Shared,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<DhtProvidersQuery>, QueryRejection>,
) -> Result<impl IntoResponse, Error> {
    let Path(id) = id.map_err(bad_path)?;
    let Query(q) = q.map_err(bad_query)?;
    let id: peerpack_core::ContentId = id.parse().map_err(|_| {
        Error::BadRequest(format!(
            "{id:?} is not a content id (blake3: and 64 lower-case hex digits)"
        ))
    })?;
    Ok(Json(
        crate::lookup::dht_providers(&inner, &id, q.first).await?,
    ))
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
pub(super) async fn publish(State(inner): Shared, body: Body) -> Result<impl IntoResponse, Error> {
    let body: PublishRequest = parse_body(body, r#"{"path": "/abs/dir"}"#)?;
    if !body.path.is_absolute() {
        return Err(Error::BadRequest(format!(
            "path {} must be absolute: the node does not share the caller's working directory",
            body.path.display()
        )));
    }
    let options = crate::publish::PublishOptions {
        allow_secrets: body.allow_secrets,
        allow_unresolved: body.allow_unresolved,
        wait_replicas: body.wait_replicas as usize,
        wait_dht: body.wait_dht,
        wait_timeout: body.wait_timeout_s.map_or(
            crate::publish::WAIT_REPLICAS_TIMEOUT,
            std::time::Duration::from_secs,
        ),
    };
    let p = crate::publish::publish_with(&inner, body.path, options).await?;
    Ok(Json(Published {
        name: p.name,
        version: p.version,
        content_id: p.content_id.to_string(),
        archive_size: p.archive_size,
        republished: p.republished,
        dht_peers: p.dht_peers,
        announced_to: p.announced_to,
        replicas: p.replicas,
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
pub(super) async fn peers(
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
pub(super) async fn peer(
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
pub(super) async fn bootstrap(
    State(inner): Shared,
    body: Body,
) -> Result<impl IntoResponse, Error> {
    let body: BootstrapRequest = parse_body(body, r#"{"addrs": ["MULTIADDR", ...]}"#)?;
    Ok(Json(inner.bootstrap(&body.addrs).await?))
}

/// A one-time sign-in link to the web page for the node's operator (`peerpack ui`): following
/// it once, within the time given, opens a session in that browser that may install and pin
/// from the page (docs/WEB.md).
#[utoipa::path(
    post,
    path = "/v1/ui/link",
    operation_id = "ui_link",
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "The link", body = UiLink),
        (status = 400, description = "A body other than none, `null` or `{}` (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
pub(super) async fn ui_link(
    State(inner): Shared,
    body: Result<Option<Json<serde_json::Value>>, JsonRejection>,
) -> Result<impl IntoResponse, Error> {
    /// The only body there may be: `{}`.
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Nothing {}
    let _: Option<Nothing> =
        parse_body(body.map(Option::unwrap_or_default), "no body, null or {}")?;
    let code = inner.web.sessions.new_code()?;
    // A link to a wildcard listener names loopback: the page answers loopback hosts only.
    let base = inner
        .api_url
        .trim_end_matches('/')
        .replace("//0.0.0.0:", "//127.0.0.1:")
        .replace("//[::]:", "//[::1]:");
    Ok(Json(UiLink {
        url: format!("{base}/ui/login?code={code}"),
        expires_in_s: crate::web::operator::CODE_TTL.as_secs(),
    }))
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
pub(super) async fn install(
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
    // The install runs on its own task. It is registered under an id a client can cancel it
    // by; a client that goes away cancels it too (the ticket is dropped with the response).
    let mut ticket = inner.transfers.installs.register(progress.cancel.clone());
    let task = {
        let (inner, progress) = (inner.clone(), progress.clone());
        let inner2 = inner.clone();
        inner
            .supervisor
            .spawn(async move { inner2.install(request, progress).await })
    };
    if q.progress.as_deref() != Some("ndjson") {
        let done = task.await;
        ticket.finish();
        return match done {
            Ok(Some(result)) => Ok(Json(result?).into_response()),
            Ok(None) => Err(Error::Unavailable("the node is shutting down".into())),
            Err(e) => Err(Error::task("installing", e)),
        };
    }
    // Streamed: a progress line at once and every PROGRESS_EVERY, the result last.
    let started = std::time::Instant::now();
    let first = Some((task, ticket, true));
    let stream = futures::stream::unfold(first, move |state| {
        let progress = progress.clone();
        async move {
            let (mut task, mut ticket, first) = state?;
            let wait = if first {
                std::time::Duration::ZERO
            } else {
                PROGRESS_EVERY
            };
            let line = tokio::select! {
                done = &mut task => {
                    ticket.finish();
                    let line = match done {
                        Ok(Some(Ok(report))) => InstallLine::Result(report),
                        Ok(Some(Err(e))) => InstallLine::Error(ErrorDetail { code: e.code().to_owned(), message: e.to_string() }),
                        Ok(None) => InstallLine::Error(ErrorDetail { code: "unavailable".to_owned(), message: "the node is shutting down".to_owned() }),
                        Err(e) => InstallLine::Error(ErrorDetail { code: "internal".to_owned(), message: e.to_string() }),
                    };
                    return Some((Ok::<_, std::convert::Infallible>(ndjson(&line)), None));
                }
                () = tokio::time::sleep(wait) => {
                    let current = progress.current();
                    InstallLine::Progress(peerpack_api::InstallProgress {
                        id: ticket.id,
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
            Some((Ok(ndjson(&line)), Some((task, ticket, false))))
        }
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// Cancel an install under way, by the id its progress lines carry. It stops before it
/// changes anything in the target; one that has begun to place trees finishes placing them.
/// Either way its answer says which.
#[utoipa::path(
    delete,
    path = "/v1/install/{id}",
    operation_id = "cancel_install",
    params(("id" = u64, Path, description = "The install's id")),
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "The install was told to stop", body = InstallCancelled),
        (status = 400, description = "An id that is not a number (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 404, description = "No install with that id is under way (`not_found`).", body = ApiError),
    ),
)]
pub(super) async fn cancel_install(
    State(inner): Shared,
    id: Result<Path<u64>, PathRejection>,
) -> Result<impl IntoResponse, Error> {
    let Path(id) = id.map_err(bad_path)?;
    if inner.transfers.installs.cancel(id) {
        Ok(Json(InstallCancelled { id }))
    } else {
        Err(Error::NotFound(format!("no install {id} is under way")))
    }
}

/// Yank one version of a package this node's key owns, or take the yank back: a new signed
/// index, stored, put in the DHT and gossiped.
#[utoipa::path(
    post,
    path = "/v1/yank",
    operation_id = "yank",
    request_body(
        content = YankRequest,
        example = json!({"package": "rust-cli@1.2.0", "reason": "leaks a token"}),
    ),
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "The versions changed and the new index's `seq`", body = Amended),
        (status = 400, description = "A malformed body, no exact version, or a reason too long (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 404, description = "An unknown name or version (`not_found`).", body = ApiError),
        (status = 409, description = "A name another key owns (`conflict`).", body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
pub(super) async fn yank(State(inner): Shared, body: Body) -> Result<impl IntoResponse, Error> {
    let r: YankRequest = parse_body(
        body,
        r#"{"package": "NAME@VERSION", "reason": "...", "undo": false}"#,
    )?;
    Ok(Json(inner.yank(&r.package, r.reason, r.undo).await?))
}

/// Deprecate the versions of a package this node's key owns, with a message, or take the
/// deprecation back.
#[utoipa::path(
    post,
    path = "/v1/deprecate",
    operation_id = "deprecate",
    request_body(
        content = DeprecateRequest,
        example = json!({"package": "rust-cli@<1.2", "message": "use 1.2 or later"}),
    ),
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "The versions changed and the new index's `seq`", body = Amended),
        (status = 400, description = "A malformed body or spec, or a message too long (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 404, description = "An unknown name, or no version that matches (`not_found`).", body = ApiError),
        (status = 409, description = "A name another key owns (`conflict`).", body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
pub(super) async fn deprecate(
    State(inner): Shared,
    body: Body,
) -> Result<impl IntoResponse, Error> {
    let r: DeprecateRequest = parse_body(body, r#"{"package": "NAME[@REQ]", "message": "..."}"#)?;
    Ok(Json(inner.deprecate(&r.package, r.message).await?))
}

/// Drop root packages from a lock file and delete the trees nothing else needs.
#[utoipa::path(
    post,
    path = "/v1/remove",
    operation_id = "remove",
    request_body(
        content = RemoveRequest,
        example = json!({"packages": ["rust-cli"], "to": "/abs/project/peerpack_packages", "lock": "version = 2\n"}),
    ),
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "The packages dropped, and the new lock file", body = RemoveReport),
        (status = 400, description = "A malformed body, a relative `to`, no package named or a bad lock file (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 404, description = "A package the lock does not hold (`not_found`).", body = ApiError),
        (status = 409, description = "A package that is only a dependency of another (`conflict`).", body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
pub(super) async fn remove(State(inner): Shared, body: Body) -> Result<impl IntoResponse, Error> {
    let request: RemoveRequest = parse_body(
        body,
        r#"{"packages": ["NAME", ...], "to": "/abs/dir", "lock": "..."}"#,
    )?;
    Ok(Json(inner.remove(request).await?))
}

/// Compare installed trees with their archives.
#[utoipa::path(
    post,
    path = "/v1/verify",
    operation_id = "verify",
    request_body(
        content = VerifyRequest,
        example = json!({"to": "/abs/project/peerpack_packages", "lock": "version = 2\n"}),
    ),
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "Each package's state and drift", body = VerifyReport),
        (status = 400, description = "A malformed body, a relative `to` or a bad lock file (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 404, description = "A package the lock does not hold (`not_found`).", body = ApiError),
        (status = 409, description = "An archive that cannot be read (`conflict`).", body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
        (status = 503, description = "An archive no longer here that no provider could serve (`unavailable`).", body = ApiError),
    ),
)]
pub(super) async fn verify(State(inner): Shared, body: Body) -> Result<impl IntoResponse, Error> {
    let request: VerifyRequest = parse_body(
        body,
        r#"{"to": "/abs/dir", "lock": "...", "packages": ["NAME", ...]}"#,
    )?;
    Ok(Json(inner.verify(request).await?))
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
pub(super) async fn gc(
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
pub(super) async fn pins(State(inner): Shared) -> Result<impl IntoResponse, Error> {
    Ok(Json(inner.pins().await?))
}

/// Pin a version, so that garbage collection keeps its archive, fetching the archive if this
/// node does not hold it.
#[utoipa::path(
    post,
    path = "/v1/pins",
    operation_id = "pin",
    request_body = PinRequest,
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "The pins added (one), as `DELETE` answers the pins removed", body = Vec<Pin>),
        (status = 400, description = "A malformed body or spec (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 404, description = "No such package or version is known (`not_found`).", body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
        (status = 503, description = "The archive is not here and no provider could serve it; the pin is kept (`unavailable`).", body = ApiError),
    ),
)]
pub(super) async fn pin(State(inner): Shared, body: Body) -> Result<impl IntoResponse, Error> {
    let body: PinRequest = parse_body(body, r#"{"package": "NAME[@VERSION]"}"#)?;
    Ok(Json(vec![inner.pin(&body.package).await?]))
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
pub(super) async fn unpin(
    State(inner): Shared,
    spec: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, Error> {
    let Path(spec) = spec.map_err(bad_path)?;
    Ok(Json(inner.unpin(&spec).await?))
}

/// The mirror rules.
#[utoipa::path(
    get,
    path = "/v1/mirrors",
    operation_id = "mirrors",
    responses(
        (status = 200, description = "Every rule", body = Vec<MirrorView>),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
pub(super) async fn mirrors(State(inner): Shared) -> Result<impl IntoResponse, Error> {
    Ok(Json(inner.mirrors().await?))
}

/// Mirror a name, or every name an owner key owns: fetch and provide every version now, and
/// each new version as it arrives, within the cache quota.
#[utoipa::path(
    post,
    path = "/v1/mirrors",
    operation_id = "mirror",
    request_body(content = MirrorRequest, example = json!({"name": "rust-cli"})),
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "The rule and what became of each version it covers", body = MirrorReport),
        (status = 400, description = "A malformed body, name or key, or not exactly one of `name` and `owner` (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 409, description = "A contested name (`conflict`).", body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
pub(super) async fn mirror(State(inner): Shared, body: Body) -> Result<impl IntoResponse, Error> {
    let body: MirrorRequest =
        parse_body(body, r#"{"name": "NAME"} or {"owner": "ed25519:<hex>"}"#)?;
    Ok(Json(inner.mirror(body).await?))
}

/// Stop mirroring a name or an owner key.
#[utoipa::path(
    delete,
    path = "/v1/mirrors/{rule}",
    operation_id = "unmirror",
    params(("rule" = String, Path, description = "A name, or an owner key `ed25519:<hex>`", example = "rust-cli")),
    security(("api_token" = []), ("api_token_cookie" = [])),
    responses(
        (status = 200, description = "The rule removed", body = MirrorView),
        (status = 400, description = "A malformed name or key (`bad_request`).", body = ApiError),
        (status = 401, description = UNAUTHORIZED, body = ApiError),
        (status = 403, description = FORBIDDEN, body = ApiError),
        (status = 404, description = "No such rule (`not_found`).", body = ApiError),
        (status = 500, description = INTERNAL, body = ApiError),
    ),
)]
pub(super) async fn unmirror(
    State(inner): Shared,
    rule: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, Error> {
    let Path(rule) = rule.map_err(bad_path)?;
    Ok(Json(inner.unmirror(&rule).await?))
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
pub(super) async fn blocks(State(inner): Shared) -> impl IntoResponse {
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
pub(super) async fn unblock(
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
pub(super) async fn trusted(State(inner): Shared) -> Result<impl IntoResponse, Error> {
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
pub(super) async fn trust(State(inner): Shared, body: Body) -> Result<impl IntoResponse, Error> {
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
pub(super) async fn untrust(
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
pub(super) async fn curator_list(State(inner): Shared) -> Result<impl IntoResponse, Error> {
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
pub(super) async fn curate(State(inner): Shared, body: Body) -> Result<impl IntoResponse, Error> {
    let body: CurateRequest = parse_body(
        body,
        r#"{"add": [{"name": "NAME", "owner": "ed25519:<hex>"}], "remove": ["NAME"]}"#,
    )?;
    let add = body.add.into_iter().map(|e| (e.name, e.owner)).collect();
    Ok(Json(inner.curate(add, body.remove).await?))
}

/// One line of a streamed answer.
fn ndjson(line: &InstallLine) -> String {
    // Through a JSON value, whose keys are sorted: the lines read as they always have.
    let mut text = serde_json::to_value(line).map(|v| v.to_string()).unwrap_or_else(|e| {
        format!(
            r#"{{"error":{{"code":"internal","message":"cannot encode a progress line: {e}"}}}}"#
        )
    });
    text.push('\n');
    text
}
