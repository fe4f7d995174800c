use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use crate::executor::{ExecutorHandle, Verdict};
use crate::store::Store;

/// Longest `/healthz` waits for the database: load balancers give up after a few seconds.
const PING_WITHIN: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

/// 200 only when the database answers; `executor` says whether work is moving (`degraded`, with
/// a reason, when executions are due and nothing was claimed or completed for a while).
async fn healthz(State(store): State<Store>, State(executor): State<ExecutorHandle>) -> Response {
    let mut body = match executor.liveness().verdict() {
        Verdict::Ok => json!({ "executor": "ok" }),
        Verdict::Degraded(reason) => json!({ "executor": "degraded", "executor_reason": reason }),
    };
    let ping = tokio::time::timeout(PING_WITHIN.min(store.deadline()), store.ping());
    let status = match ping.await {
        Ok(Ok(())) => {
            body["status"] = "ok".into();
            body["database"] = store.backend().into();
            StatusCode::OK
        }
        failed => {
            body["status"] = "unavailable".into();
            body["reason"] = match failed {
                Err(_) => format!(
                    "the database did not answer within {}",
                    humantime::format_duration(PING_WITHIN)
                ),
                Ok(Err(e)) => {
                    // The database's own words (host names, users, paths) go to the log, not to whoever asks.
                    tracing::warn!(error = %e, "healthz: the database does not answer");
                    "the database does not answer; see the server log".to_string()
                }
                Ok(Ok(())) => unreachable!(),
            }
            .into();
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    (status, Json(body)).into_response()
}
