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
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
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
        .fallback(|| async { Error::NotFound("no such API endpoint; see docs/API.md".into()) })
        .with_state(inner)
}

async fn status(State(inner): Shared) -> Result<impl IntoResponse, Error> {
    Ok(Json(inner.status().await?))
}

async fn search(State(inner): Shared, Query(q): Query<Search>) -> Result<impl IntoResponse, Error> {
    Ok(Json(inner.search(q).await?))
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

async fn peers(State(inner): Shared, Query(q): Query<PeersQuery>) -> impl IntoResponse {
    Json(inner.peer_views(q.min_reputation))
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
