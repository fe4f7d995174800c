use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;
use crate::executor::ExecutorHandle;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(render))
}

/// Prometheus text exposition.
async fn render(State(executor): State<ExecutorHandle>) -> impl IntoResponse {
    // Ages as of this scrape, per process (its lease owner): a stalled executor shows as a
    // growing age, whatever else is counted.
    let owner = executor.owner().to_string();
    let live = executor.liveness();
    metrics::gauge!("deferral_executor_last_claim_age_seconds", "owner" => owner.clone())
        .set(live.claim_age().as_secs_f64());
    metrics::gauge!("deferral_executor_last_completion_age_seconds", "owner" => owner)
        .set(live.completion_age().as_secs_f64());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::prometheus().render(),
    )
}
