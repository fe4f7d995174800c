//! `GET /api/v1/event-types`, `POST /api/v1/event-types/{pattern}/pause|resume` (issue 18).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::actions::By;
use crate::console::ClientAddr;
use crate::http::error::ApiError;
use crate::http::state::AppState;

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
    let pause = state.actions.set_paused(&By::api(client), &pattern, paused).await?;
    Ok(Json(serde_json::to_value(pause).expect("plain data serialises")))
}
