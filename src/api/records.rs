//! The records over REST: `GET /api/v1/records/{kind}` with the console's filters, and the
//! notification outbox for the application that sends them: `GET /api/v1/notifications`
//! (oldest first, `?status=pending`) and `POST /api/v1/notifications/{id}/sent`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use domain::records::{RecordFilter, RecordKind, RecordPage, RecordRows};

use super::check_token;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::records_read::check_record_filter;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/records/{kind}", get(list))
        .route("/api/v1/notifications", get(outbox))
        .route("/api/v1/notifications/{id}/sent", post(mark_sent))
}

fn filter(kind: RecordKind, pairs: &[(String, String)]) -> Result<RecordFilter, ApiError> {
    let invalid = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_filter", m);
    let filter =
        RecordFilter::from_pairs(kind, pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(invalid)?;
    check_record_filter(&filter).map_err(invalid)?;
    Ok(filter)
}

/// `{"data": [...], "next_cursor": …}`, like the executions list.
fn page_json(page: RecordPage) -> Value {
    let data = match page.rows {
        RecordRows::Customers(r) => serde_json::to_value(r),
        RecordRows::Subscriptions(r) => serde_json::to_value(r),
        RecordRows::PaymentFailures(r) => serde_json::to_value(r),
        RecordRows::Notifications(r) => serde_json::to_value(r),
        RecordRows::Disputes(r) => serde_json::to_value(r),
    }
    .expect("plain data serialises");
    json!({ "data": data, "next_cursor": page.next_cursor })
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(kind): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    check_token(&state, &headers)?;
    let kind: RecordKind = kind
        .parse()
        .map_err(|m: String| ApiError::new(StatusCode::NOT_FOUND, "not_found", m))?;
    let filter = filter(kind, &pairs)?;
    Ok(Json(page_json(state.store.records(&filter).await?)))
}

/// Notifications oldest first: the order to send them in. `next_cursor` continues after the last.
async fn outbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    check_token(&state, &headers)?;
    let filter = RecordFilter {
        oldest_first: true,
        ..filter(RecordKind::Notifications, &pairs)?
    };
    Ok(Json(page_json(state.store.records(&filter).await?)))
}

/// Marks a notification sent. Idempotent: marking a sent one again answers it unchanged
/// (its `sent_at` stays the first one's); an unknown id answers 404.
async fn mark_sent(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_token(&state, &headers)?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no notification `{id}`"));
    let number: i64 = id.parse().map_err(|_| not_found())?;
    state.store.mark_notification_sent(number).await?;
    let notification = state.store.notification(number).await?.ok_or_else(not_found)?;
    Ok(Json(serde_json::to_value(notification).expect("plain data serialises")))
}
