//! A local stand-in for the Stripe API: `GET /v1/{collection}/{id}` answered from objects
//! the test put there, with Stripe's error bodies and headers, and failures a test can
//! inject per id (404, 401, 429 + Retry-After, 500, Stripe-Should-Retry, slow answers).
//!
//! Lists (`fake_lists.rs`): `GET /v1/events` (the events a test added), `GET /v1/charges` and
//! `GET /v1/invoice_payments` (from the stored objects), with Stripe's filters and paging.
//! Faults can be queued for the next event list requests (a 401 or a 500 part-way through).
//!
//! Objects are kept in the pre-basil shape and served in the version the request asks for
//! (`Stripe-Version`, rendered as `deferral::fixtures::render` does); events are served as
//! stored, in the version they were created in, as Stripe does. Every request's
//! `Stripe-Account` and `Stripe-Version` are recorded. With [`FakeStripe::limit`] it enforces
//! rate limits per mode and per endpoint (route template) on every request, lists included,
//! and answers 429 as Stripe does: `Stripe-Rate-Limited-Reason` and Stripe's `rate_limit`
//! error body.
#![allow(dead_code)]

#[path = "fake_lists.rs"]
mod lists;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
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

/// The version objects are served in when a request names none (an account's default).
pub const ACCOUNT_VERSION: &str = "2024-06-20";

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

/// An event in the account's list, and whether every webhook endpoint acknowledged it.
struct Listed {
    event: Value,
    delivered: bool,
}

#[derive(Default)]
struct Inner {
    objects: Mutex<HashMap<String, Value>>,
    faults: Mutex<HashMap<String, VecDeque<Fault>>>,
    seen: Mutex<Vec<Seen>>,
    /// In the order they were added (Stripe's creation order).
    events: Mutex<Vec<Listed>>,
    /// For the next list requests, in order: `None` serves the page, `Some` fails it.
    list_faults: Mutex<VecDeque<Option<Fault>>>,
    /// Each list request waits this long before answering.
    list_delay: Mutex<Duration>,
    lists_running: AtomicUsize,
    lists_most_at_once: AtomicUsize,
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
            .route("/v1/events", get(lists::events))
            .route("/v1/charges", get(lists::charges))
            .route("/v1/invoice_payments", get(lists::invoice_payments))
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

    /// Serves the fixture's event, and its object (in the pre-basil shape, which names every
    /// link) as the object's current state.
    pub fn put_fixture(&self, f: &deferral::fixtures::Fixture) {
        if f.canonical()["id"].is_string() {
            self.put(f.canonical());
        }
        self.put(f.value());
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

    /// Adds an event to the account's list (and serves it by id). `delivered`: every webhook
    /// endpoint acknowledged it, so `delivery_success=false` does not list it.
    pub fn add_event(&self, body: &str, delivered: bool) {
        let event: Value = serde_json::from_str(body).expect("an event body");
        self.put(&event);
        self.inner.events.lock().unwrap().push(Listed { event, delivered });
    }

    /// The next list requests get these, in order: `None` the page, `Some` the fault.
    pub fn fail_list(&self, faults: impl IntoIterator<Item = Option<Fault>>) {
        self.inner.list_faults.lock().unwrap().extend(faults);
    }

    /// Every list request waits this long before it answers.
    pub fn slow_list(&self, delay: Duration) {
        *self.inner.list_delay.lock().unwrap() = delay;
    }

    /// The list requests seen, each as its query string.
    pub fn list_queries(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter_map(|s| s.path.strip_prefix("/v1/events?").map(String::from))
            .collect()
    }

    /// The most list requests that were being answered at the same moment.
    pub fn most_lists_at_once(&self) -> usize {
        self.inner.lists_most_at_once.load(Ordering::SeqCst)
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

/// Whether the key is the fake's live one; Stripe's 401 for any key but the fake's two.
fn check_key(authorization: Option<&str>) -> Result<bool, Box<Response>> {
    match authorization {
        Some(a) if a == format!("Bearer {KEY}") => Ok(false),
        Some(a) if a == format!("Bearer {LIVE_KEY}") => Ok(true),
        _ => Err(Box::new(error(
            401,
            "invalid_request_error",
            None,
            "Invalid API Key provided: sk_test_****",
        ))),
    }
}

/// Records the request; its key, and the version asked for.
fn see(inner: &Inner, path: String, headers: &HeaderMap) -> (Option<String>, String) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let authorization = header("authorization");
    let version = header("stripe-version");
    inner.seen.lock().unwrap().push(Seen {
        path,
        authorization: authorization.clone(),
        account: header("stripe-account"),
        version: version.clone(),
    });
    (authorization, version.unwrap_or_else(|| ACCOUNT_VERSION.into()))
}

/// Checks the key and counts the request against the limits, its mode's and its `route`'s
/// (route template, e.g. `GET /v1/charges/{id}`), as Stripe counts every endpoint of an account;
/// `Err` is the answer to give instead.
fn pass(inner: &Inner, authorization: Option<&str>, route: &str) -> Result<(), Box<Response>> {
    let live = check_key(authorization)?;
    if let Some(reason) = over_limit(inner, live, route) {
        inner.rate_limited.fetch_add(1, Ordering::SeqCst);
        return Err(Box::new(rate_limited(reason)));
    }
    inner.served.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// [`see`], then [`pass`]: `Ok` is the version asked for.
fn admit(inner: &Inner, path: String, route: &str, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let (authorization, version) = see(inner, path, headers);
    pass(inner, authorization.as_deref(), route)?;
    Ok(version)
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
    let route = format!("GET /v1/{collection}/{{id}}");
    let version = match admit(&inner, format!("/v1/{collection}/{id}"), &route, &headers) {
        Ok(version) => version,
        Err(refused) => return *refused,
    };
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
    if let Some(Fault::Missing) = fault {
        return missing();
    }
    if let Some(response) = injected(fault).await {
        return response;
    }
    match inner.objects.lock().unwrap().get(&id) {
        // An event keeps its version; `render` leaves it alone (it is no invoice, charge …).
        Some(object) => axum::Json(deferral::fixtures::render(object, &version)).into_response(),
        None => missing(),
    }
}

/// The answer a fault gives instead of the resource (`None`: answer normally, after a `Slow` wait).
async fn injected(fault: Option<Fault>) -> Option<Response> {
    match fault? {
        Fault::Missing => Some(error(
            404,
            "invalid_request_error",
            Some("resource_missing"),
            "No such object",
        )),
        Fault::Unauthorized => Some(error(
            401,
            "invalid_request_error",
            None,
            "Expired API Key provided: sk_test_****",
        )),
        Fault::RateLimited { retry_after } => {
            let mut r = rate_limited("endpoint-rate");
            r.headers_mut()
                .insert("retry-after", retry_after.to_string().parse().unwrap());
            Some(r)
        }
        Fault::ServerError => Some(error(
            500,
            "api_error",
            None,
            "An unknown error occurred while processing the request.",
        )),
        Fault::Status { status, should_retry } => {
            let mut r = error(status, "api_error", Some("injected"), "An injected failure.");
            if let Some(retry) = should_retry {
                r.headers_mut()
                    .insert("stripe-should-retry", retry.to_string().parse().unwrap());
            }
            Some(r)
        }
        Fault::Slow(wait) => {
            tokio::time::sleep(wait).await;
            None
        }
    }
}
