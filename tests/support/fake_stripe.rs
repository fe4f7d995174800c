//! A local stand-in for the Stripe API: `GET /v1/{collection}/{id}` answered from objects
//! the test put there, with Stripe's error bodies and headers, and failures a test can
//! inject per id (404, 401, 429 + Retry-After, 500, Stripe-Should-Retry, slow answers).
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The only key the fake accepts.
pub const KEY: &str = "sk_test_fake_0123456789";

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
    if authorization.as_deref() != Some(&format!("Bearer {KEY}")) {
        return error(
            401,
            "invalid_request_error",
            None,
            "Invalid API Key provided: sk_test_****",
        );
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
        Some(object) => axum::Json(object.clone()).into_response(),
        None => missing(),
    }
}
