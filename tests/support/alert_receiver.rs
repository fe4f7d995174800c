//! The alert tests' harness: a local Slack-compatible receiver, Deferral configured to post
//! to it, and events that fail or succeed through the fake Stripe.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use deferral::config::Config;
use serde_json::Value;

use crate::fake_stripe::{FakeStripe, Fault, KEY};
use crate::support::{TestApp, event};

pub const PUBLIC: &str = "https://deferral.example";
pub const TYPE: &str = "customer.created";

/// A chat's incoming webhook: keeps what it accepts, answers 503 while it refuses, and while
/// `hang_ms` is set answers only that long after a post (keeping nothing).
#[derive(Default)]
pub struct Inbox {
    pub accepted: Mutex<Vec<Value>>,
    pub posts: AtomicUsize,
    /// Posts still to refuse.
    pub refuse: AtomicUsize,
    pub hang_ms: AtomicU64,
}

pub struct Receiver {
    pub url: String,
    pub inbox: Arc<Inbox>,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        async fn hook(State(inbox): State<Arc<Inbox>>, body: String) -> (StatusCode, &'static str) {
            inbox.posts.fetch_add(1, Ordering::SeqCst);
            let hang = inbox.hang_ms.load(Ordering::SeqCst);
            if hang > 0 {
                tokio::time::sleep(Duration::from_millis(hang)).await;
                return (StatusCode::OK, "late");
            }
            let refused = inbox
                .refuse
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if refused {
                return (StatusCode::SERVICE_UNAVAILABLE, "down");
            }
            let json: Value = serde_json::from_str(&body).expect("alerts are JSON");
            inbox.accepted.lock().unwrap().push(json);
            (StatusCode::OK, "ok")
        }
        let inbox = Arc::new(Inbox::default());
        let app = axum::Router::new()
            .route("/services/T000/B000/secret", post(hook))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/services/T000/B000/secret", listener.local_addr().unwrap());
        let _task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, inbox, _task }
    }

    /// A receiver that answers every post only after `d`.
    pub async fn hanging(d: Duration) -> Receiver {
        let r = Receiver::start().await;
        r.inbox.hang_ms.store(d.as_millis() as u64, Ordering::SeqCst);
        r
    }

    pub fn accepted(&self) -> Vec<Value> {
        self.inbox.accepted.lock().unwrap().clone()
    }

    pub fn posts(&self) -> usize {
        self.inbox.posts.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` messages were accepted; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} alerts after {timeout:?}: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub fn text(message: &Value) -> &str {
    message["text"].as_str().expect("a text field")
}

/// The failures a message reports: 1 for one execution, the count of a digest, 0 for recovered.
pub fn failures(message: &Value) -> i64 {
    let a = &message["attachments"][0];
    if a["color"] == "good" {
        return 0;
    }
    a["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"] == "Failed")
        .map_or(1, |f| f["value"].as_str().unwrap().parse().unwrap())
}

/// The message's id (its footer), which a message delivered twice repeats.
pub fn footer(message: &Value) -> String {
    message["attachments"][0]["footer"].as_str().unwrap().to_string()
}

pub async fn spawn(fake: &FakeStripe, receiver: &Receiver, window: Duration) -> TestApp {
    spawn_to(fake, &[receiver], window).await
}

/// [`spawn`] with several receivers (`DEFERRAL_ALERT_WEBHOOK_URL` holds a list).
pub async fn spawn_to(fake: &FakeStripe, receivers: &[&Receiver], window: Duration) -> TestApp {
    spawn_adjusted(fake, receivers, window, |_| {}).await
}

/// [`spawn_to`], with more settings changed by `adjust`.
pub async fn spawn_adjusted(
    fake: &FakeStripe,
    receivers: &[&Receiver],
    window: Duration,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let stripe = fake.url.clone();
    let hooks: Vec<String> = receivers.iter().map(|r| r.url.clone()).collect();
    TestApp::spawn_with(move |c| {
        c.stripe_secret_key = Some(KEY.into());
        c.stripe_api_base = stripe;
        c.alert_webhook_url = deferral::config::CommaList(hooks);
        c.alert_digest_window = window;
        c.alert_retry_interval = Duration::from_millis(100);
        c.public_url = Some(PUBLIC.into());
        adjust(c);
    })
    .await
}

pub fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Delivers an event of [`TYPE`] the fake Stripe refuses with 401 (a permanent error): it fails at once.
pub async fn failing(app: &TestApp, fake: &FakeStripe, id: &str) -> String {
    failing_as(app, fake, id, TYPE).await
}

/// [`failing`], of `event_type`.
pub async fn failing_as(app: &TestApp, fake: &FakeStripe, id: &str, event_type: &str) -> String {
    fake.fail(id, [Fault::Unauthorized]);
    app.deliver_ok(&event(id, event_type, &format!("cus_{id}"), now_s()))
        .await
}

/// Delivers an event that succeeds, after `faults` if any.
pub async fn succeeding(app: &TestApp, fake: &FakeStripe, id: &str, event_type: &str, faults: Vec<Fault>) -> String {
    let body = event(id, event_type, &format!("cus_{id}"), now_s());
    fake.put(&serde_json::from_str(&body).unwrap());
    fake.fail(id, faults);
    app.deliver_ok(&body).await
}
