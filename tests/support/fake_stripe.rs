//! A local stand-in for the Stripe API: `GET /v1/{collection}/{id}` answered from objects
//! the test put there, with Stripe's error bodies and headers, and failures a test can
//! inject per id (404, 401, 429 + Retry-After, 500, Stripe-Should-Retry, slow answers).
//! With [`FakeStripe::limit`] it enforces rate limits per mode and per endpoint (route
//! template) and answers 429 as Stripe does: `Stripe-Rate-Limited-Reason` and Stripe's
//! `rate_limit` error body.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The sandbox key the fake accepts.
pub const KEY: &str = "sk_test_fake_0123456789";
/// The live-mode key the fake accepts (its calls count against the live limit).
pub const LIVE_KEY: &str = "sk_live_fake_0123456789";

/// Requests per second the fake allows, like Stripe's limiter: per mode (all endpoints
/// together) and per endpoint. Stripe's defaults are `live: 100, test: 25, endpoint: 25`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub live: usize,
    pub test: usize,
    pub endpoint: usize,
}

/// What the next request for an id gets instead of the object.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 404 `resource_missing`, as for an id Stripe does not know.
    Missing,
    /// 401, as for a revoked key.
    Unauthorized,
    /// Stripe's 429 (`endpoint-rate`), with a `Retry-After` (seconds) the client must respect.
    RateLimited { retry_after: u64 },
    /// 500 `api_error`.
    ServerError,
    /// Any status, with `Stripe-Should-Retry` when given.
    Status { status: u16, should_retry: Option<bool> },
    /// Waits this long, then answers normally.
    Slow(Duration),
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub authorization: Option<String>,
    pub account: Option<String>,
    pub version: Option<String>,
}

#[derive(Default)]
struct Inner {
    objects: Mutex<HashMap<String, Value>>,
    faults: Mutex<HashMap<String, VecDeque<Fault>>>,
    seen: Mutex<Vec<Seen>>,
    limits: Mutex<Option<Limits>>,
    /// Per limit (a mode, or a mode's endpoint), when the requests it let through in the last second came.
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
    served: AtomicUsize,
    rate_limited: AtomicUsize,
}

pub struct FakeStripe {
    pub url: String,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let inner = Arc::new(Inner::default());
        let router = Router::new()
            .route("/v1/{collection}/{id}", get(retrieve))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Stripe");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("fake Stripe serves");
        });
        FakeStripe { url, inner, task }
    }

    /// Serves `object` under its `id` (the latest put wins, like Stripe's current state).
    pub fn put(&self, object: &Value) {
        let id = object["id"].as_str().expect("an object with an id").to_string();
        self.inner.objects.lock().unwrap().insert(id, object.clone());
    }

    /// Serves the event by its id, and its object as the object's current state.
    pub fn put_event(&self, body: &str) {
        let event: Value = serde_json::from_str(body).expect("an event body");
        if event["data"]["object"]["id"].is_string() {
            self.put(&event["data"]["object"]);
        }
        self.put(&event);
    }

    /// The next requests for `id` get these faults, in order; later ones are served.
    pub fn fail(&self, id: &str, faults: impl IntoIterator<Item = Fault>) {
        self.inner
            .faults
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_default()
            .extend(faults);
    }

    /// Enforces `limits` from now on: a request over one is answered 429, as Stripe does.
    pub fn limit(&self, limits: Limits) {
        *self.inner.limits.lock().unwrap() = Some(limits);
    }

    /// Requests answered 429 by the enforced limits (not by injected faults).
    pub fn rate_limited(&self) -> usize {
        self.inner.rate_limited.load(Ordering::SeqCst)
    }

    /// Requests that passed the limits (answered with the object or another error).
    pub fn served(&self) -> usize {
        self.inner.served.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// How many requests asked for `id`.
    pub fn requests_for(&self, id: &str) -> usize {
        self.requests()
            .iter()
            .filter(|s| s.path.ends_with(&format!("/{id}")))
            .count()
    }
}

fn error(status: u16, error_type: &str, code: Option<&str>, message: &str) -> Response {
    let mut body = json!({ "error": { "type": error_type, "message": message,
        "request_log_url": "https://dashboard.stripe.com/test/logs/req_fake" } });
    if let Some(code) = code {
        body["error"]["code"] = code.into();
    }
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

/// Stripe's answer over a rate limit: 429, the limiter named in `Stripe-Rate-Limited-Reason`,
/// and the `rate_limit` error (as Stripe words it; no `Retry-After`, none is documented).
fn rate_limited(reason: &str) -> Response {
    let body = json!({ "error": {
        "code": "rate_limit",
        "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
        "message": "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits.",
        "type": "invalid_request_error",
    } });
    let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    r.headers_mut()
        .insert("stripe-rate-limited-reason", reason.parse().unwrap());
    r
}

/// Counts the request against the mode's and the endpoint's limits (sliding one-second
/// windows); over either, says which, and the request is not counted.
fn over_limit(inner: &Inner, live: bool, route: &str) -> Option<&'static str> {
    let limits = (*inner.limits.lock().unwrap())?;
    let mode = if live { "live" } else { "test" };
    let now = Instant::now();
    let mut windows = inner.windows.lock().unwrap();
    let mut count = |key: String| {
        let w = windows.entry(key).or_default();
        while w
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            w.pop_front();
        }
        w.len()
    };
    let global = if live { limits.live } else { limits.test };
    let endpoint_key = format!("{mode} {route}");
    if count(mode.to_string()) >= global {
        return Some("global-rate");
    }
    if count(endpoint_key.clone()) >= limits.endpoint {
        return Some("endpoint-rate");
    }
    windows.get_mut(mode).unwrap().push_back(now);
    windows.get_mut(&endpoint_key).unwrap().push_back(now);
    None
}

async fn retrieve(
    State(inner): State<Arc<Inner>>,
    Path((collection, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let authorization = header("authorization");
    inner.seen.lock().unwrap().push(Seen {
        path: format!("/v1/{collection}/{id}"),
        authorization: authorization.clone(),
        account: header("stripe-account"),
        version: header("stripe-version"),
    });
    let live = match authorization.as_deref() {
        Some(a) if a == format!("Bearer {KEY}") => false,
        Some(a) if a == format!("Bearer {LIVE_KEY}") => true,
        _ => {
            return error(
                401,
                "invalid_request_error",
                None,
                "Invalid API Key provided: sk_test_****",
            );
        }
    };
    if let Some(reason) = over_limit(&inner, live, &format!("GET /v1/{collection}/{{id}}")) {
        inner.rate_limited.fetch_add(1, Ordering::SeqCst);
        return rate_limited(reason);
    }
    inner.served.fetch_add(1, Ordering::SeqCst);
    let fault = inner.faults.lock().unwrap().get_mut(&id).and_then(VecDeque::pop_front);
    let missing = || {
        let singular = collection.trim_end_matches('s');
        error(
            404,
            "invalid_request_error",
            Some("resource_missing"),
            &format!("No such {singular}: '{id}'"),
        )
    };
    match fault {
        Some(Fault::Missing) => return missing(),
        Some(Fault::Unauthorized) => {
            return error(
                401,
                "invalid_request_error",
                None,
                "Expired API Key provided: sk_test_****",
            );
        }
        Some(Fault::RateLimited { retry_after }) => {
            let mut r = rate_limited("endpoint-rate");
            r.headers_mut()
                .insert("retry-after", retry_after.to_string().parse().unwrap());
            return r;
        }
        Some(Fault::ServerError) => {
            return error(
                500,
                "api_error",
                None,
                "An unknown error occurred while processing the request.",
            );
        }
        Some(Fault::Status { status, should_retry }) => {
            let mut r = error(status, "api_error", Some("injected"), "An injected failure.");
            if let Some(retry) = should_retry {
                r.headers_mut()
                    .insert("stripe-should-retry", retry.to_string().parse().unwrap());
            }
            return r;
        }
        Some(Fault::Slow(wait)) => tokio::time::sleep(wait).await,
        None => {}
    }
    match inner.objects.lock().unwrap().get(&id) {
        Some(object) => axum::Json(object.clone()).into_response(),
        None => missing(),
    }
}
