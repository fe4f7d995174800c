use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(render))
}

/// Prometheus text exposition; behind `DEFERRAL_METRICS_TOKEN` when it is set.
async fn render(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(expected) = state.config.metrics_token.as_deref() {
        super::check_bearer(&headers, expected)?;
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::prometheus().render(),
    )
        .into_response())
}
