use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::AppState;
use crate::store::Store;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

/// 200 only when the database answers.
async fn healthz(State(store): State<Store>) -> Response {
    match store.ping().await {
        Ok(()) => Json(serde_json::json!({ "status": "ok", "database": store.backend() })).into_response(),
        Err(e) => {
            // The database's own words (host names, users, paths) go to the log, not to whoever asks.
            tracing::warn!(error = %e, "healthz: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({
                    "status": "unavailable",
                    "reason": "the database does not answer; see the server log",
                })),
            )
                .into_response()
        }
    }
}
