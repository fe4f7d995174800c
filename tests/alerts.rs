//! Failure alerts reach a local Slack-compatible receiver: one message per final failure (none
//! for an attempt that is retried), a burst digested into a handful, one "recovered" message,
//! delivered once when the receiver comes back, and after a SIGKILL once restarted. Both backends.

#[path = "support/fake_stripe.rs"]
mod fake_stripe;
mod processes;
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use fake_stripe::{FakeStripe, Fault, KEY};
use serde_json::Value;
use support::{TestApp, event};

const PUBLIC: &str = "https://deferral.example";
const TYPE: &str = "customer.created";

/// A chat's incoming webhook: keeps what it accepts, answers 503 while `down`.
#[derive(Default)]
struct Inbox {
    accepted: Mutex<Vec<Value>>,
    posts: AtomicUsize,
    /// Posts still to refuse.
    refuse: AtomicUsize,
}

struct Receiver {
    url: String,
    inbox: Arc<Inbox>,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        async fn hook(State(inbox): State<Arc<Inbox>>, body: String) -> (StatusCode, &'static str) {
            inbox.posts.fetch_add(1, Ordering::SeqCst);
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

    fn accepted(&self) -> Vec<Value> {
        self.inbox.accepted.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages were accepted; panics after `timeout`.
    async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
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

fn text(message: &Value) -> &str {
    message["text"].as_str().expect("a text field")
}

/// The failures a message reports: 1 for one execution, the count of a digest, 0 for recovered.
fn failures(message: &Value) -> i64 {
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

async fn spawn(fake: &FakeStripe, receiver: &Receiver, window: Duration) -> TestApp {
    spawn_to(fake, &[receiver], window).await
}

/// [`spawn`] with several receivers (`DEFERRAL_ALERT_WEBHOOK_URL` holds a list).
async fn spawn_to(fake: &FakeStripe, receivers: &[&Receiver], window: Duration) -> TestApp {
    let stripe = fake.url.clone();
    let hooks: Vec<String> = receivers.iter().map(|r| r.url.clone()).collect();
    TestApp::spawn_with(move |c| {
        c.stripe_secret_key = Some(KEY.into());
        c.stripe_api_base = stripe;
        c.alert_webhook_url = deferral::config::CommaList(hooks);
        c.alert_digest_window = window;
        c.alert_retry_interval = Duration::from_millis(100);
        c.public_url = Some(PUBLIC.into());
    })
    .await
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Delivers an event the fake Stripe refuses with 401 (a permanent error): it fails at once.
async fn failing(app: &TestApp, fake: &FakeStripe, id: &str) -> String {
    fake.fail(id, [Fault::Unauthorized]);
    app.deliver_ok(&event(id, TYPE, &format!("cus_{id}"), now_s())).await
}

/// Delivers an event that succeeds, after `faults` if any.
async fn succeeding(app: &TestApp, fake: &FakeStripe, id: &str, event_type: &str, faults: Vec<Fault>) -> String {
    let body = event(id, event_type, &format!("cus_{id}"), now_s());
    fake.put(&serde_json::from_str(&body).unwrap());
    fake.fail(id, faults);
    app.deliver_ok(&body).await
}

#[tokio::test]
async fn one_alert_per_final_failure_and_none_for_a_retried_attempt() {
    let fake = FakeStripe::start().await;
    let receiver = Receiver::start().await;
    let window = Duration::from_millis(300);
    let app = spawn(&fake, &receiver, window).await;

    // Retried once, then succeeds: no alert (another type, so no "recovered" either).
    let retried = succeeding(&app, &fake, "evt_retried", "customer.updated", vec![Fault::ServerError]).await;
    let row = app.wait_for(&retried, "succeeded", Duration::from_secs(10)).await;
    assert_eq!(row.attempts, 2);

    let mut ids = Vec::new();
    for n in 0..3 {
        let id = failing(&app, &fake, &format!("evt_fail_{n}")).await;
        app.wait_for(&id, "failed", Duration::from_secs(10)).await;
        ids.push(id);
        let got = receiver.wait_for(n + 1, Duration::from_secs(10)).await;
        // Spaced beyond the window: each failure is a message of its own.
        tokio::time::sleep(window + Duration::from_millis(100)).await;
        let message = &got[n];
        let link = format!("{PUBLIC}/executions/{}", ids[n]);
        assert_eq!(message["attachments"][0]["title_link"], link.as_str(), "{message}");
        assert!(text(message).contains(TYPE), "{message}");
        assert!(text(message).contains(&format!("evt_fail_{n}")), "{message}");
        assert!(text(message).contains("401"), "the error: {message}");
        assert_eq!(message["attachments"][0]["color"], "danger");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.accepted();
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|m| !text(m).contains("evt_retried")), "{got:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_burst_of_failures_is_digested_into_a_handful_of_messages() {
    let fake = FakeStripe::start().await;
    let receiver = Receiver::start().await;
    let window = Duration::from_millis(1500);
    let app = spawn(&fake, &receiver, window).await;
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(failing(&app, &fake, &format!("evt_burst_{n}")).await);
    }
    for id in &ids {
        app.wait_for(id, "failed", Duration::from_secs(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = receiver.accepted();
        let reported: i64 = got.iter().map(failures).sum();
        if reported >= 40 {
            assert_eq!(reported, 40, "a failure was reported twice: {got:?}");
            assert!(got.len() <= 6, "{} messages for one burst: {got:?}", got.len());
            // After the first, the digests say how many and link to the filtered list.
            let digest = got.iter().find(|m| failures(m) > 1).expect("a digest");
            assert!(
                text(digest).contains(&format!("executions of {TYPE} failed")),
                "{digest}"
            );
            let list = format!("{PUBLIC}/?type=customer.created&status=failed");
            assert_eq!(digest["attachments"][0]["title_link"], list.as_str());
            break;
        }
        assert!(Instant::now() < deadline, "{reported} of 40 failures reported: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(window * 2).await;
    let got = receiver.accepted();
    assert_eq!(got.iter().map(failures).sum::<i64>(), 40);
    app.stop().await;
}

#[tokio::test]
async fn a_type_that_alerted_sends_one_recovered_message_when_it_succeeds_again() {
    let fake = FakeStripe::start().await;
    let receiver = Receiver::start().await;
    let app = spawn(&fake, &receiver, Duration::from_millis(200)).await;
    let failed = failing(&app, &fake, "evt_broken").await;
    app.wait_for(&failed, "failed", Duration::from_secs(10)).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;

    for n in 0..3 {
        let ok = succeeding(&app, &fake, &format!("evt_fixed_{n}"), TYPE, vec![]).await;
        app.wait_for(&ok, "succeeded", Duration::from_secs(10)).await;
    }
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    let recovered = &got[1];
    assert_eq!(recovered["attachments"][0]["color"], "good", "{recovered}");
    assert!(text(recovered).contains(&format!("{TYPE} recovered")), "{recovered}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        receiver.accepted().len(),
        2,
        "one recovered message: {:?}",
        receiver.accepted()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_down_then_up_gets_the_alert_once_and_the_console_shows_the_delivery() {
    let fake = FakeStripe::start().await;
    let receiver = Receiver::start().await;
    receiver.inbox.refuse.store(3, Ordering::SeqCst);
    let app = spawn(&fake, &receiver, Duration::from_millis(200)).await;
    let failed = failing(&app, &fake, "evt_down").await;
    app.wait_for(&failed, "failed", Duration::from_secs(10)).await;
    let got = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert!(text(&got[0]).contains("evt_down"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.accepted().len(), 1, "delivered more than once");
    assert_eq!(
        receiver.inbox.posts.load(Ordering::SeqCst),
        4,
        "3 refused, then accepted"
    );

    let alerts = app.store.alerts(10, true).await.unwrap();
    let delivery = &alerts.messages[0].deliveries[0];
    assert_eq!(
        (delivery.state.as_str(), delivery.attempts),
        ("sent", 4),
        "{delivery:?}"
    );
    // The receiver's secret path never shows.
    assert!(!delivery.receiver.contains("secret"), "{delivery:?}");

    let token = app.log_in().await;
    let (_, page) = app.page("/alerts", &token).await;
    assert!(page.contains("sent after 4 attempts"), "{page}");
    assert!(!page.contains("B000/secret"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn every_receiver_gets_each_alert_once_and_one_that_is_down_holds_up_no_other() {
    let fake = FakeStripe::start().await;
    let (up, down) = (Receiver::start().await, Receiver::start().await);
    down.inbox.refuse.store(3, Ordering::SeqCst);
    let app = spawn_to(&fake, &[&up, &down], Duration::from_millis(200)).await;
    let failed = failing(&app, &fake, "evt_fanout").await;
    app.wait_for(&failed, "failed", Duration::from_secs(10)).await;
    let got = up.wait_for(1, Duration::from_secs(10)).await;
    assert!(text(&got[0]).contains("evt_fanout"), "{got:?}");
    let got = down.wait_for(1, Duration::from_secs(15)).await;
    assert!(text(&got[0]).contains("evt_fanout"), "{got:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        (up.accepted().len(), down.accepted().len()),
        (1, 1),
        "each receiver once"
    );
    assert_eq!(
        up.inbox.posts.load(Ordering::SeqCst),
        1,
        "the receiver that was up: one post"
    );
    assert_eq!(down.inbox.posts.load(Ordering::SeqCst), 4, "3 refused, then accepted");
    app.stop().await;
}

/// Real processes (the binary): the first is killed with SIGKILL after the failure is committed
/// and before its alert is delivered (the receiver is down); once restarted, the alert arrives once.
#[tokio::test]
async fn an_alert_survives_a_sigkill_between_the_failure_and_the_send() {
    let fake = FakeStripe::start().await;
    let receiver = Receiver::start().await;
    receiver.inbox.refuse.store(usize::MAX, Ordering::SeqCst);
    let (database_url, dir) = support::fresh_database().await;
    let env = [
        ("STRIPE_SECRET_KEY", KEY),
        ("STRIPE_API_BASE", fake.url.as_str()),
        ("DEFERRAL_ALERT_WEBHOOK_URL", receiver.url.as_str()),
        ("DEFERRAL_ALERT_DIGEST_WINDOW", "200ms"),
        ("DEFERRAL_ALERT_RETRY_INTERVAL", "100ms"),
        ("DEFERRAL_PUBLIC_URL", PUBLIC),
        ("DEFERRAL_POLL_INTERVAL", "50ms"),
    ];
    let mut first = processes::Process::spawn(&database_url, dir.path(), "deferral-killed", &env);
    first.ready(Duration::from_secs(60)).await;
    let client = reqwest::Client::new();
    fake.fail("evt_killed", [Fault::Unauthorized]);
    let body = event("evt_killed", TYPE, "cus_killed", now_s());
    let (status, json) = processes::deliver(&client, &first.url, &body).await.unwrap();
    assert_eq!(status, 200, "{json}");
    let id = json["execution_id"].as_str().unwrap().to_string();

    let store = deferral::store::Store::open(&database_url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while store.execution(&id).await.unwrap().unwrap().state != "failed" {
        assert!(Instant::now() < deadline, "never failed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The receiver refused at least one post: the alert is composed and not delivered.
    while receiver.inbox.posts.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "never posted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill();
    assert!(receiver.accepted().is_empty());

    receiver.inbox.refuse.store(0, Ordering::SeqCst);
    let mut second = processes::Process::spawn(&database_url, dir.path(), "deferral-restarted", &env);
    second.ready(Duration::from_secs(60)).await;
    let got = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert!(text(&got[0]).contains("evt_killed"), "{got:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.accepted().len(), 1);
    store.close().await;
}

/// PostgreSQL: two processes share the outbox; every message reaches the receiver exactly once.
#[tokio::test]
async fn two_postgres_processes_send_each_alert_once() {
    if !support::on_postgres() {
        return;
    }
    let fake = FakeStripe::start().await;
    let receiver = Receiver::start().await;
    let (database_url, dir) = support::fresh_database().await;
    let env = [
        ("STRIPE_SECRET_KEY", KEY),
        ("STRIPE_API_BASE", fake.url.as_str()),
        ("DEFERRAL_ALERT_WEBHOOK_URL", receiver.url.as_str()),
        ("DEFERRAL_ALERT_DIGEST_WINDOW", "100ms"),
        ("DEFERRAL_POLL_INTERVAL", "50ms"),
    ];
    let procs = processes::start(2, &database_url, dir.path(), &env).await;
    let client = reqwest::Client::new();
    let types = ["customer.created", "customer.updated", "customer.deleted"];
    for n in 0..30 {
        let id = format!("evt_two_{n}");
        fake.fail(&id, [Fault::Unauthorized]);
        let body = event(&id, types[n % 3], &format!("cus_{n}"), now_s());
        let (status, _) = processes::deliver(&client, &procs[n % 2].url, &body).await.unwrap();
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let db = processes::connect(&database_url).await;
    processes::wait_until_all_finished(&db, Duration::from_secs(20)).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = receiver.accepted();
        if got.iter().map(failures).sum::<i64>() >= 30 {
            break;
        }
        assert!(Instant::now() < deadline, "not every failure reported: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.accepted();
    let mut footers: Vec<&str> = got
        .iter()
        .map(|m| m["attachments"][0]["footer"].as_str().unwrap())
        .collect();
    let all = footers.len();
    footers.sort();
    footers.dedup();
    assert_eq!(footers.len(), all, "a message was delivered twice: {got:?}");
    assert_eq!(got.iter().map(failures).sum::<i64>(), 30);
    let (messages,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM alert_messages")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(messages as usize, all);
}
