//! The per-request bounds, as tower / tower-http layers around every route (the fallback too):
//!
//! - requests in progress are capped (`DEFERRAL_MAX_REQUESTS`, tower's global concurrency limit):
//!   one more is shed at once with 503 and `Retry-After`, instead of queueing;
//! - a request that has not been answered after `DEFERRAL_REQUEST_TIMEOUT` gets 408: this also
//!   bounds a body trickled in just fast enough to pass the body timeout;
//! - a body that pauses longer than `DEFERRAL_BODY_TIMEOUT` fails to read (the webhook answers 408);
//! - bodies outside the webhook are capped at [`MAX_BODY`] (413).
//!
//! The connection-level bounds (header timeout, open connections) are in `http::serve`.

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::load_shed::error::Overloaded;
use tower::timeout::TimeoutLayer;
use tower::timeout::error::Elapsed;
use tower::{BoxError, ServiceBuilder};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;

use super::ApiError;
use crate::config::Limits;

/// The largest body the console and the API read: their forms and queries are a few kilobytes.
/// The webhook has its own limit (`webhook::MAX_BODY`).
pub const MAX_BODY: usize = 64 * 1024;

/// Bodies of `router`'s routes are capped at [`MAX_BODY`].
pub fn limit_bodies<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(RequestBodyLimitLayer::new(MAX_BODY))
}

/// Every route of `router` gets the request timeout, the body timeout and the concurrency cap.
pub fn bound_requests<S: Clone + Send + Sync + 'static>(router: Router<S>, limits: &Limits) -> Router<S> {
    router.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(refusal))
            .layer(LoadShedLayer::new())
            .layer(GlobalConcurrencyLimitLayer::new(limits.max_requests as usize))
            .layer(TimeoutLayer::new(limits.request_timeout))
            .layer(RequestBodyTimeoutLayer::new(limits.body_timeout)),
    )
}

/// The answer for a request a layer refused, in the JSON error shape of every endpoint.
async fn refusal(error: BoxError) -> Response {
    if error.is::<Overloaded>() {
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server is at its limit of requests in progress (DEFERRAL_MAX_REQUESTS); try again",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        metrics::counter!("deferral_requests_shed_total").increment(1);
        response
    } else if error.is::<Elapsed>() {
        metrics::counter!("deferral_requests_timed_out_total").increment(1);
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request took longer than DEFERRAL_REQUEST_TIMEOUT",
        )
        .into_response()
    } else {
        tracing::error!(%error, "request failed in a middleware");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
        .into_response()
    }
}

/// Whether a body failed to read because it paused longer than the body timeout.
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}
