use axum::{Json, http::StatusCode, response::{IntoResponse, Response}};
use serde_json::json;

pub struct ApiError { pub status: StatusCode, pub code: &'static str, pub message: String }

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": {"code": self.code, "message": self.message}}))).into_response()
    }
}
