//! `GET /api/v1/event-types`, `POST /api/v1/event-types/{pattern}/pause|resume` (issue 18).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use domain::event_types::Pause;

use crate::console::ClientAddr;
use crate::console::audit::{self, By, Done};
use crate::http::{ApiError, AppState};
use crate::store::PauseError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/event-types", get(list))
        .route("/api/v1/event-types/{pattern}/{action}", post(act))
}

async fn list(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Result<Json<Value>, ApiError> {
    super::check_token(&state, &headers)?;
    let all = state.store.event_types().await?;
    let data: Vec<Value> = all
        .types
        .iter()
        .map(|t| {
            let counts: Map<String, Value> = t.counts.iter().map(|(s, n)| (s.to_string(), json!(n))).collect();
            json!({ "event_type": t.event_type, "counts": counts, "paused": t.paused })
        })
        .collect();
    Ok(Json(json!({ "data": data, "pauses": all.pauses })))
}

async fn act(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: axum::http::HeaderMap,
    Path((pattern, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    super::check_token(&state, &headers)?;
    let paused = match action.as_str() {
        "pause" => true,
        "resume" => false,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no action `{other}` on event types (pause or resume)"),
            ));
        }
    };
    let pause = set_paused(&state, &pattern, paused, &By::api(client)).await?;
    Ok(Json(serde_json::to_value(pause).expect("plain data serialises")))
}

/// Pauses or resumes `pattern` for `by` (the API, or the console's operator), and wakes the
/// executor when held executions may run again. One code path for the API and the console.
pub async fn set_paused(state: &AppState, pattern: &str, paused: bool, by: &By) -> Result<Pause, ApiError> {
    let store = &state.store;
    let result = if paused {
        store.pause(pattern, by.role()).await
    } else {
        store.resume(pattern).await
    };
    let pause = result.map_err(|e| match e {
        PauseError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_pattern", m),
        not @ PauseError::NotPaused { .. } => ApiError::new(StatusCode::NOT_FOUND, "not_paused", not.to_string()),
        PauseError::Store(e) => e.into(),
    })?;
    if !paused {
        state.executor.wake();
    }
    let action = if paused { "pause" } else { "resume" };
    audit::record(
        store,
        by,
        Done {
            action: action.into(),
            target: pattern,
            result_id: None,
            applied: 1,
            skipped: 0,
        },
    )
    .await;
    Ok(pause)
}
