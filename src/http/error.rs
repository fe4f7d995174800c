//! The JSON error shape every endpoint answers with: `{"error": "<code>", "message": "<text>"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        (self.status, Json(body)).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "database error");
        if e.is_unavailable() {
            ApiError::unavailable("the database is unavailable; try again")
        } else {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; see the server log",
            )
        }
    }
}

/// An operator action's refusal as the REST API answers it: the action's own code, with the
/// HTTP status that says what kind of refusal it is.
impl From<crate::actions::ActionError> for ApiError {
    fn from(e: crate::actions::ActionError) -> Self {
        use crate::actions::ActionError as E;
        let status = match &e {
            E::Forbidden(_) => StatusCode::FORBIDDEN,
            E::NotFound(_) | E::NotPaused(_) => StatusCode::NOT_FOUND,
            E::Refused(_) => StatusCode::CONFLICT,
            E::Invalid { .. } => StatusCode::BAD_REQUEST,
            E::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            E::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl IntoResponse for crate::actions::ActionError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
