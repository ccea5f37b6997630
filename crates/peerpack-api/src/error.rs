//! The shape of every failed call.

use serde::{Deserialize, Serialize};

/// What every failed call answers, with a matching HTTP status.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of [`ApiError`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// A stable machine-readable code: `bad_request` (400), `unauthorized` (401), `forbidden`
    /// (403), `not_found` (404), `conflict` or `unsafe_archive` (409), `unavailable` (503) or
    /// `internal` (500).
    #[cfg_attr(feature = "openapi", schema(example = "not_found"))]
    pub code: String,
    /// What went wrong, for the user.
    pub message: String,
}
