//! `POST /webhooks/stripe`: verify the signature on the raw body, store the event, answer.

mod event;
pub mod ingest;
pub mod signature;

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

pub use event::Envelope;
pub use ingest::Ingest;

use domain::model::Origin;

use crate::config::Config;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::{NewEvent, now_ms};

/// Stripe's own payloads stay far below this.
pub const MAX_BODY: usize = 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/stripe", post(receive))
        // Larger bodies are refused with 413 before they are read in full.
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

fn outcome(label: &'static str) {
    metrics::counter!("deferral_webhooks_total", "outcome" => label).increment(1);
}

fn reject(status: StatusCode, code: &'static str, message: String) -> ApiError {
    tracing::warn!(code, reason = %message, "webhook rejected");
    outcome(code);
    ApiError::new(status, code, message)
}

async fn receive(
    State(ingest): State<Ingest>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let config = &ingest.config;
    if config.stripe_webhook_secret.is_empty() {
        return Err(reject(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhook_secret_missing",
            "STRIPE_WEBHOOK_SECRET is not set: this endpoint cannot verify deliveries until it is".into(),
        ));
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            reject(
                e.status(),
                "payload_too_large",
                format!("the body is larger than {MAX_BODY} bytes"),
            )
        } else if crate::http::limits::is_body_timeout(&e) {
            reject(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the body paused longer than DEFERRAL_BODY_TIMEOUT".into(),
            )
        } else {
            reject(StatusCode::BAD_REQUEST, "unreadable_body", e.body_text())
        }
    })?;
    let header = headers
        .get("stripe-signature")
        .map(|h| h.to_str())
        .transpose()
        .map_err(|_| {
            let e = signature::SignatureError::MalformedHeader("not visible ASCII");
            reject(StatusCode::BAD_REQUEST, e.code(), e.to_string())
        })?;
    let now = now_ms();
    signature::verify(
        header,
        &body,
        &config.stripe_webhook_secret,
        config.stripe_webhook_tolerance,
        now / 1000,
    )
    .map_err(|e| reject(StatusCode::BAD_REQUEST, e.code(), e.to_string()))?;
    let new = match admit(&body, now, config, Origin::Webhook)
        .map_err(|m| reject(StatusCode::BAD_REQUEST, "invalid_event", m))?
    {
        Admitted::New(new) => new,
        Admitted::Ignored { id, event_type } => {
            outcome("ignored");
            tracing::info!(event_id = %id, %event_type, "event type not in DEFERRAL_EVENT_TYPES; ignored");
            return Ok(Json(json!({ "ignored": true })));
        }
    };
    let event_id = new.id.clone();
    match ingest.submit(new).await {
        Ok(stored) => {
            outcome(if stored.duplicate { "duplicate" } else { "accepted" });
            tracing::debug!(event_id, execution_id = %stored.execution_id, duplicate = stored.duplicate, "webhook stored");
            Ok(Json(
                json!({ "execution_id": stored.execution_id, "duplicate": stored.duplicate }),
            ))
        }
        Err(e) => {
            outcome("unavailable");
            tracing::error!(event_id, error = %e, "cannot store the event; Stripe will retry");
            Err(ApiError::unavailable(
                "the event could not be stored; Stripe will retry the delivery",
            ))
        }
    }
}

/// What becomes of an event body, delivered to the webhook or listed by Stripe.
#[derive(Debug)]
pub enum Admitted {
    /// To be stored (a known id is a duplicate there and keeps its execution).
    New(NewEvent),
    /// Its type is not in `DEFERRAL_EVENT_TYPES`.
    Ignored { id: String, event_type: String },
}

/// The one way an event body enters Deferral, whether a webhook delivered it or the
/// reconciler found it in Stripe's events list: checked, filtered by the type allow-list,
/// and given its first run time and attempts as configured. The message says what is wrong.
pub fn admit(body: &[u8], now_ms: i64, config: &Config, origin: Origin) -> Result<Admitted, String> {
    let event = Envelope::parse(body)?;
    if !config.event_types.is_empty() && !config.event_types.contains(&event.event_type) {
        return Ok(Admitted::Ignored {
            id: event.id,
            event_type: event.event_type,
        });
    }
    Ok(Admitted::New(new_event(event, body, now_ms, config, origin)))
}

/// What the store keeps, with the first run time: `delay` after the event's creation, never in the past.
fn new_event(event: Envelope, body: &[u8], now_ms: i64, config: &Config, origin: Origin) -> NewEvent {
    let delay = config.process_delay;
    let run_at = if delay.is_zero() {
        now_ms
    } else {
        (event.created * 1000 + millis(delay)).max(now_ms)
    };
    NewEvent {
        id: event.id,
        event_type: event.event_type,
        created: event.created,
        livemode: event.livemode,
        api_version: event.api_version,
        account: event.account,
        object_id: event.data.object.id,
        object_type: event.data.object.object,
        payload: String::from_utf8_lossy(body).into_owned(),
        run_at,
        discard_at: config.discard_after.map(|d| run_at + millis(d)),
        max_attempts: config.max_attempts as i64,
        origin,
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
