//! Failure alerts reach a local Slack-compatible receiver: one message per final failure (none
//! for an attempt that is retried), a burst digested into a handful, one "recovered" message and
//! none for a success that finished before the failure, delivered once when the receiver comes
//! back, and after a SIGKILL (before or after the message is composed) once restarted. Both
//! backends. Posting to slow receivers and sharing the outbox: `alert_delivery.rs`.

#[path = "support/alert_receiver.rs"]
mod alert_receiver;
#[path = "support/fake_stripe.rs"]
mod fake_stripe;
mod processes;
mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use alert_receiver::*;
use fake_stripe::{FakeStripe, Fault, KEY};
use support::event;

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

/// Recovery follows the order executions finish in, not the order they arrived in: a newer
/// execution that succeeded while an older one waited in back-off, before that one failed for
/// good, is no recovery. A success after the failure is.
#[tokio::test]
async fn a_success_that_finished_before_the_failure_sends_no_recovered_message() {
    let fake = FakeStripe::start().await;
    let receiver = Receiver::start().await;
    let backoff = Duration::from_millis(1500);
    let app = spawn_adjusted(&fake, &[&receiver], Duration::from_millis(200), |c| {
        c.retry_initial_interval = backoff;
        c.retry_max_interval = backoff;
    })
    .await;
    // The older one: Stripe's 500 (retried after the back-off), then a 401 (fails for good).
    let body = event("evt_older", TYPE, "cus_older", now_s());
    fake.put(&serde_json::from_str(&body).unwrap());
    fake.fail("evt_older", [Fault::ServerError, Fault::Unauthorized]);
    let older = app.deliver_ok(&body).await;
    // The newer one (another object: not behind it) succeeds while the older one waits.
    let newer = succeeding(&app, &fake, "evt_newer", TYPE, vec![]).await;
    let newer = app.wait_for(&newer, "succeeded", Duration::from_secs(10)).await;
    let older = app.wait_for(&older, "failed", Duration::from_secs(10)).await;
    assert!(
        older.seq < newer.seq && newer.finished_at < older.finished_at,
        "arrived first, finished last: {older:?} {newer:?}"
    );
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert!(text(&got[0]).contains("evt_older"), "{got:?}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let got = receiver.accepted();
    assert_eq!(
        got.len(),
        1,
        "a recovered message for a success before the failure: {got:?}"
    );

    let fixed = succeeding(&app, &fake, "evt_fixed", TYPE, vec![]).await;
    app.wait_for(&fixed, "succeeded", Duration::from_secs(10)).await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert!(text(&got[1]).contains(&format!("{TYPE} recovered")), "{got:?}");
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

/// The environment of a real process posting to `receiver`, with the digest `window`. A
/// delivery the killed process held (claimed, its post's outcome not yet recorded) is taken
/// again once its lease expires: 3 × (1 s + 3 s) here.
fn process_env<'a>(fake: &'a FakeStripe, receiver: &'a Receiver, window: &'a str) -> [(&'static str, &'a str); 9] {
    [
        ("DEFERRAL_ALERT_TIMEOUT", "1s"),
        ("DEFERRAL_DB_TIMEOUT", "3s"),
        ("STRIPE_SECRET_KEY", KEY),
        ("STRIPE_API_BASE", fake.url.as_str()),
        ("DEFERRAL_ALERT_WEBHOOK_URL", receiver.url.as_str()),
        ("DEFERRAL_ALERT_DIGEST_WINDOW", window),
        ("DEFERRAL_ALERT_RETRY_INTERVAL", "100ms"),
        ("DEFERRAL_PUBLIC_URL", PUBLIC),
        ("DEFERRAL_POLL_INTERVAL", "50ms"),
    ]
}

/// Delivers a failing event to a real process; returns its execution's id once it failed.
async fn fail_in(process: &processes::Process, store: &deferral::store::Store, fake: &FakeStripe, id: &str) -> String {
    fake.fail(id, [Fault::Unauthorized]);
    let body = event(id, TYPE, &format!("cus_{id}"), now_s());
    let (status, json) = processes::deliver(&reqwest::Client::new(), &process.url, &body)
        .await
        .unwrap();
    assert_eq!(status, 200, "{json}");
    let execution = json["execution_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    while store.execution(&execution).await.unwrap().unwrap().state != "failed" {
        assert!(Instant::now() < deadline, "{id} never failed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    execution
}

/// Real processes (the binary): the first is killed with SIGKILL after the failure is committed
/// and before its alert is delivered (the receiver is down); once restarted, the alert arrives once.
#[tokio::test]
async fn an_alert_survives_a_sigkill_between_the_failure_and_the_send() {
    let fake = FakeStripe::start().await;
    let receiver = Receiver::start().await;
    receiver.inbox.refuse.store(usize::MAX, Ordering::SeqCst);
    let (database_url, dir) = support::fresh_database().await;
    let env = process_env(&fake, &receiver, "200ms");
    let mut first = processes::Process::spawn(&database_url, dir.path(), "deferral-killed", &env);
    first.ready(Duration::from_secs(60)).await;
    let store = deferral::store::Store::open(&database_url).await.unwrap();
    fail_in(&first, &store, &fake, "evt_killed").await;
    let deadline = Instant::now() + Duration::from_secs(15);
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
    let got = receiver.wait_for(1, Duration::from_secs(25)).await;
    assert!(text(&got[0]).contains("evt_killed"), "{got:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.accepted().len(), 1);
    store.close().await;
}

/// Real processes: killed with SIGKILL after a failure is in the outbox and before its message
/// is composed (the type's digest window, long, began with the message about an earlier
/// failure); restarted with a short window, the message about it arrives, once.
#[tokio::test]
async fn an_alert_survives_a_sigkill_between_the_failure_and_its_message() {
    let fake = FakeStripe::start().await;
    let receiver = Receiver::start().await;
    let (database_url, dir) = support::fresh_database().await;
    let mut first = processes::Process::spawn(
        &database_url,
        dir.path(),
        "deferral-killed",
        &process_env(&fake, &receiver, "1h"),
    );
    first.ready(Duration::from_secs(60)).await;
    let store = deferral::store::Store::open(&database_url).await.unwrap();
    fail_in(&first, &store, &fake, "evt_opens_window").await;
    receiver.wait_for(1, Duration::from_secs(15)).await;
    fail_in(&first, &store, &fake, "evt_in_window").await;
    // In the outbox, waiting for the window: no message about it yet.
    let alerts = store.alerts(10, true).await.unwrap();
    assert_eq!((alerts.pending_failures, alerts.messages.len()), (1, 1), "{alerts:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.kill();
    assert_eq!(receiver.accepted().len(), 1);

    let mut second = processes::Process::spawn(
        &database_url,
        dir.path(),
        "deferral-restarted",
        &process_env(&fake, &receiver, "200ms"),
    );
    second.ready(Duration::from_secs(60)).await;
    let got = receiver.wait_for(2, Duration::from_secs(15)).await;
    assert!(text(&got[1]).contains("evt_in_window"), "{got:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = receiver.accepted();
    assert_eq!(got.len(), 2, "one message after the restart: {got:?}");
    assert_eq!(got.iter().map(failures).sum::<i64>(), 2, "{got:?}");
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
