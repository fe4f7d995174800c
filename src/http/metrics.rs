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
    // Ages as of this scrape, per process (its lease owner): a stalled executor shows as a
    // growing age, whatever else is counted.
    let executor = &state.executor;
    let owner = executor.owner().to_string();
    let live = executor.liveness();
    metrics::gauge!("deferral_executor_last_claim_age_seconds", "owner" => owner.clone())
        .set(live.claim_age().as_secs_f64());
    metrics::gauge!("deferral_executor_last_completion_age_seconds", "owner" => owner)
        .set(live.completion_age().as_secs_f64());
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::prometheus().render(),
    )
        .into_response())
}
