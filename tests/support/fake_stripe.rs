//! A local stand-in for the Stripe API: `GET /v1/{collection}/{id}` answered from objects
//! the test put there, with Stripe's error bodies and headers, and failures a test can
//! inject per id (404, 401, 429 + Retry-After, 500, Stripe-Should-Retry, slow answers).
//!
//! Objects are kept in the pre-basil shape and served in the version the request asks for
//! (`Stripe-Version`, rendered as `deferral::fixtures::render` does); events are served as
//! stored, in the version they were created in, as Stripe does. `GET /v1/invoice_payments`
//! lists the invoice payments of the stored invoices (filters `invoice`, `payment[type]`,
//! `payment[payment_intent]`). Every request's `Stripe-Account` and `Stripe-Version` are recorded.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The only key the fake accepts.
pub const KEY: &str = "sk_test_fake_0123456789";

/// The version objects are served in when a request names none (an account's default).
pub const ACCOUNT_VERSION: &str = "2024-06-20";

/// What the next request for an id gets instead of the object.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 404 `resource_missing`, as for an id Stripe does not know.
    Missing,
    /// 401, as for a revoked key.
    Unauthorized,
    /// 429 with `Retry-After` (seconds).
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

/// Records the request and checks its key; `Err` is the answer to give instead.
fn admit(inner: &Inner, path: String, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let authorization = header("authorization");
    let version = header("stripe-version");
    inner.seen.lock().unwrap().push(Seen {
        path,
        authorization: authorization.clone(),
        account: header("stripe-account"),
        version: version.clone(),
    });
    if authorization.as_deref() != Some(&format!("Bearer {KEY}")) {
        return Err(Box::new(error(
            401,
            "invalid_request_error",
            None,
            "Invalid API Key provided: sk_test_****",
        )));
    }
    Ok(version.unwrap_or_else(|| ACCOUNT_VERSION.into()))
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

async fn retrieve(
    State(inner): State<Arc<Inner>>,
    Path((collection, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let version = match admit(&inner, format!("/v1/{collection}/{id}"), &headers) {
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
            let mut r = error(
                429,
                "invalid_request_error",
                Some("rate_limit"),
                "Request rate limit exceeded.",
            );
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
        // An event keeps its version; `render` leaves it alone (it is no invoice, charge …).
        Some(object) => axum::Json(deferral::fixtures::render(object, &version)).into_response(),
        None => missing(),
    }
}
