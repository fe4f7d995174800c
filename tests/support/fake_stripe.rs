//! A local stand-in for the Stripe API: `GET /v1/{collection}/{id}` answered from objects
//! the test put there, with Stripe's error bodies and headers, and failures a test can
//! inject per id (404, 401, 429 + Retry-After, 500, Stripe-Should-Retry, slow answers).
//!
//! `GET /v1/events` lists the events a test added, as Stripe does: newest first, filtered by
//! `created[gte|gt|lte|lt]`, `delivery_success`, `types[]` (up to 20) or `type` (one pattern
//! with `*`), paged by `limit` (1–100, default 10), `starting_after`/`ending_before` and
//! `has_more`; unknown parameters and bad values answer Stripe's 400s. Faults can be queued
//! for the next list requests (a 401, a 429 or a 500 part-way through the pages), and
//! [`FakeStripe::limit`] holds for the list too.
//!
//! Objects are kept in the pre-basil shape and served in the version the request asks for
//! (`Stripe-Version`, rendered as `deferral::fixtures::render` does); events are served as
//! stored, in the version they were created in, as Stripe does. `GET /v1/invoice_payments`
//! lists the invoice payments of the stored invoices (filters `invoice`, `payment[type]`,
//! `payment[payment_intent]`). Every request's `Stripe-Account` and `Stripe-Version` are recorded.
//! With [`FakeStripe::limit`] it enforces rate limits per mode and per endpoint (route
//! template) and answers 429 as Stripe does: `Stripe-Rate-Limited-Reason` and Stripe's
//! `rate_limit` error body.
#![allow(dead_code)]

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
            .route("/v1/events", get(list_events))
            .route("/v1/invoice_payments", get(invoice_payments))
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

/// Records the request and checks its key; `Err` is the answer to give instead.
/// `Ok`: the version asked for, and whether the key is live.
fn admit(inner: &Inner, path: String, headers: &HeaderMap) -> Result<(String, bool), Box<Response>> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let authorization = header("authorization");
    let version = header("stripe-version");
    inner.seen.lock().unwrap().push(Seen {
        path,
        authorization: authorization.clone(),
        account: header("stripe-account"),
        version: version.clone(),
    });
    let live = check_key(authorization.as_deref())?;
    Ok((version.unwrap_or_else(|| ACCOUNT_VERSION.into()), live))
}

/// An invoice's default invoice payment, as Stripe's API reference shows one, while it is open.
fn invoice_payment(invoice: &Value) -> Option<Value> {
    let intent = invoice["payment_intent"].as_str()?;
    let id = invoice["id"].as_str()?;
    Some(json!({
        "id": format!("inpay_{}", id.trim_start_matches("in_")), "object": "invoice_payment",
        "amount_paid": null, "amount_requested": invoice["amount_due"], "created": invoice["created"],
        "currency": invoice["currency"], "invoice": id, "is_default": true, "livemode": invoice["livemode"],
        "payment": { "type": "payment_intent", "payment_intent": intent },
        "status": "open", "status_transitions": { "canceled_at": null, "paid_at": null }
    }))
}

async fn invoice_payments(
    State(inner): State<Arc<Inner>>,
    RawQuery(raw): RawQuery,
    Query(filters): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/v1/invoice_payments?{}", raw.unwrap_or_default());
    if let Err(refused) = admit(&inner, path, &headers) {
        return *refused;
    }
    let filter = |key: &str| filters.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let matches = |p: &Value| {
        filter("invoice").is_none_or(|i| p["invoice"] == i)
            && filter("payment[type]").is_none_or(|t| p["payment"]["type"] == t)
            && filter("payment[payment_intent]").is_none_or(|pi| p["payment"]["payment_intent"] == pi)
    };
    let data: Vec<Value> = inner
        .objects
        .lock()
        .unwrap()
        .values()
        .filter(|o| o["object"] == "invoice")
        .filter_map(invoice_payment)
        .filter(matches)
        .collect();
    axum::Json(json!({ "object": "list", "url": "/v1/invoice_payments", "has_more": false, "data": data }))
        .into_response()
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

/// Stripe's 429 when the request is over a limit; otherwise counts it as served.
fn limited(inner: &Inner, live: bool, route: &str) -> Option<Response> {
    match over_limit(inner, live, route) {
        Some(reason) => {
            inner.rate_limited.fetch_add(1, Ordering::SeqCst);
            Some(rate_limited(reason))
        }
        None => {
            inner.served.fetch_add(1, Ordering::SeqCst);
            None
        }
    }
}

async fn retrieve(
    State(inner): State<Arc<Inner>>,
    Path((collection, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (version, live) = match admit(&inner, format!("/v1/{collection}/{id}"), &headers) {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    if let Some(refused) = limited(&inner, live, &format!("GET /v1/{collection}/{{id}}")) {
        return refused;
    }
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

/// Stripe's 400 for a parameter it refuses, naming the parameter.
fn invalid(param: &str, message: &str) -> Response {
    let body = json!({ "error": { "type": "invalid_request_error", "message": message, "param": param,
        "request_log_url": "https://dashboard.stripe.com/test/logs/req_fake" } });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// Counts list requests being answered, for `most_lists_at_once`.
struct Running<'a>(&'a Inner);

impl<'a> Running<'a> {
    fn start(inner: &'a Inner) -> Running<'a> {
        let now = inner.lists_running.fetch_add(1, Ordering::SeqCst) + 1;
        inner.lists_most_at_once.fetch_max(now, Ordering::SeqCst);
        Running(inner)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.lists_running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `*` matches any run of characters, as in Stripe's `type=invoice.*`.
fn matches_pattern(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && matches_pattern(rest, &tail[i..]))
        }
    }
}

async fn list_events(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let authorization = header("authorization");
    inner.seen.lock().unwrap().push(Seen {
        path: format!("/v1/events?{}", query.join("&")),
        authorization: authorization.clone(),
        account: header("stripe-account"),
        version: header("stripe-version"),
    });
    let _running = Running::start(&inner);
    let delay = *inner.list_delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let live = match check_key(authorization.as_deref()) {
        Ok(live) => live,
        Err(refused) => return *refused,
    };
    if let Some(refused) = limited(&inner, live, "GET /v1/events") {
        return refused;
    }
    let fault = inner.list_faults.lock().unwrap().pop_front().flatten();
    if let Some(response) = injected(fault).await {
        return response;
    }

    let mut created: Vec<(String, i64)> = Vec::new();
    let (mut delivery, mut limit, mut after, mut before) = (None, 10usize, None, None);
    let (mut pattern, mut types) = (None::<String>, Vec::<String>::new());
    for (key, value) in &pairs {
        match key.as_str() {
            "created" | "created[gte]" | "created[gt]" | "created[lte]" | "created[lt]" => match value.parse() {
                Ok(n) => created.push((key.clone(), n)),
                Err(_) => return invalid(key, &format!("Invalid integer: {value}")),
            },
            "delivery_success" => match value.as_str() {
                "true" => delivery = Some(true),
                "false" => delivery = Some(false),
                _ => return invalid(key, &format!("Invalid boolean: {value}")),
            },
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => limit = n,
                Ok(0) => return invalid(key, "This value must be greater than or equal to 1."),
                Ok(_) => return invalid(key, "This value must be less than or equal to 100."),
                Err(_) => return invalid(key, &format!("Invalid integer: {value}")),
            },
            "starting_after" => after = Some(value.clone()),
            "ending_before" => before = Some(value.clone()),
            "type" => pattern = Some(value.clone()),
            "types[]" => types.push(value.clone()),
            other => return invalid(other, &format!("Received unknown parameter: {other}")),
        }
    }
    if pattern.is_some() && !types.is_empty() {
        return invalid("types", "You may pass either `type` or `types`, but not both.");
    }
    if types.len() > 20 {
        return invalid("types", "You may pass at most 20 event types in `types`.");
    }

    let events = inner.events.lock().unwrap();
    // Newest first; events of the same second in reverse order of creation.
    let mut order: Vec<usize> = (0..events.len()).collect();
    let created_of = |i: usize| events[i].event["created"].as_i64().unwrap_or_default();
    order.sort_by_key(|&i| std::cmp::Reverse((created_of(i), i)));
    let position = |id: &str| order.iter().position(|&i| events[i].event["id"] == id);
    let no_such = |id: &str| {
        error(
            400,
            "invalid_request_error",
            Some("resource_missing"),
            &format!("No such event: '{id}'"),
        )
    };
    let keeps = |i: usize| {
        let e = &events[i];
        let at = created_of(i);
        let ty = e.event["type"].as_str().unwrap_or_default();
        created.iter().all(|(k, n)| match k.as_str() {
            "created[gte]" => at >= *n,
            "created[gt]" => at > *n,
            "created[lte]" => at <= *n,
            "created[lt]" => at < *n,
            _ => at == *n,
        }) && delivery.is_none_or(|d| e.delivered == d)
            && (types.is_empty() || types.iter().any(|t| t == ty))
            && pattern.as_deref().is_none_or(|p| matches_pattern(p, ty))
    };
    let (from, to) = match (&after, &before) {
        (Some(id), _) => match position(id) {
            Some(p) => (p + 1, order.len()),
            None => return no_such(id),
        },
        (None, Some(id)) => match position(id) {
            Some(p) => (0, p),
            None => return no_such(id),
        },
        (None, None) => (0, order.len()),
    };
    let matching: Vec<usize> = order[from..to].iter().copied().filter(|&i| keeps(i)).collect();
    // `ending_before` pages toward newer events: the `limit` nearest the cursor.
    let page: Vec<usize> = if after.is_none() && before.is_some() {
        matching[matching.len().saturating_sub(limit)..].to_vec()
    } else {
        matching.iter().copied().take(limit).collect()
    };
    let has_more = matching.len() > page.len();
    let data: Vec<Value> = page.iter().map(|&i| events[i].event.clone()).collect();
    axum::Json(json!({ "object": "list", "url": "/v1/events", "has_more": has_more, "data": data })).into_response()
}
