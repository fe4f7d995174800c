//! The REST API under `/api/v1`: read executions, and retry, re-run or cancel them.
//! Bearer `DEFERRAL_API_TOKEN`; without a configured token every call answers 401.

pub mod event_types;
mod records;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use domain::model::{Action, ExecutionFilter};

use crate::actions::audit::{self, By};
use crate::console::ClientAddr;
use crate::http::error::ApiError;
use crate::http::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/executions", get(list))
        .route("/api/v1/executions/{id}", get(show))
        .route("/api/v1/executions/{id}/{action}", post(act))
        .route("/api/v1/audit", get(audit_log))
        .merge(event_types::router())
        .merge(records::router())
}

/// Checks `Authorization: Bearer <token>` against `DEFERRAL_API_TOKEN`.
fn check_token(state: &AppState, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.config.api_token.as_deref() else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the API is disabled: set DEFERRAL_API_TOKEN to enable it",
        ));
    };
    crate::http::token::check_bearer(headers, expected)
}

fn invalid_filter(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_filter", message)
}

/// Reads a filter from query pairs, checked by the filter's one rule ([`ExecutionFilter::validate`]).
pub fn parse_filter(pairs: &[(String, String)]) -> Result<ExecutionFilter, ApiError> {
    ExecutionFilter::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(invalid_filter)
}

async fn list(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    check_token(&state, &headers)?;
    let filter = parse_filter(&pairs)?;
    let (rows, more) = state.store.list(&filter).await?;
    let next_cursor = if more || matches!(filter.cursor, Some(domain::model::Cursor::After(_))) {
        rows.last().map(|r| domain::model::Cursor::Before(r.seq).encode())
    } else {
        None
    };
    let data = state.store.views(&rows).await?;
    Ok(Json(json!({ "data": data, "next_cursor": next_cursor })))
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no execution `{id}`"))
}

async fn show(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_token(&state, &headers)?;
    let row = state.store.execution(&id).await?.ok_or_else(|| not_found(&id))?;
    let view = state.store.views(std::slice::from_ref(&row)).await?.remove(0);
    Ok(Json(serde_json::to_value(view).expect("plain data serialises")))
}

async fn act(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: axum::http::HeaderMap,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    check_token(&state, &headers)?;
    // An unknown action is a path that names nothing.
    let action: Action = action
        .parse()
        .map_err(|m: String| ApiError::new(StatusCode::NOT_FOUND, "not_found", m))?;
    let execution = state.actions.act(&By::api(client), &id, action).await?;
    Ok(Json(serde_json::to_value(execution).expect("plain data serialises")))
}

/// The audit log, newest first: `?limit=&cursor=` as for executions.
async fn audit_log(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    check_token(&state, &headers)?;
    let mut cursor = None;
    let mut limit = None;
    for (key, value) in &pairs {
        match key.as_str() {
            "cursor" => cursor = Some(domain::model::Cursor::decode(value).map_err(invalid_filter)?),
            "limit" => {
                limit = Some(
                    value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=domain::model::MAX_PAGE_SIZE).contains(n))
                        .ok_or_else(|| {
                            invalid_filter(format!("limit must be between 1 and {}", domain::model::MAX_PAGE_SIZE))
                        })?,
                )
            }
            other => return Err(invalid_filter(format!("unknown parameter `{other}` (cursor, limit)"))),
        }
    }
    let before = audit::before(cursor).map_err(invalid_filter)?;
    let page = audit::page(&state.store, before, limit).await?;
    Ok(Json(serde_json::to_value(page).expect("plain data serialises")))
}
