use axum::{Json, Router, routing::get};
use serde::Serialize;

#[derive(Serialize)]
struct Health { status: &'static str }

pub fn router() -> Router {
    Router::new()
        .route("/health", get(|| async { Json(Health { status: "ok" }) }))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}
