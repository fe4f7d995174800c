//! Posting alerts to receivers that hang: one that answers late (past
//! `DEFERRAL_ALERT_TIMEOUT`) holds up no other receiver's messages, and on PostgreSQL two
//! processes sharing the outbox still send each message once, however long the hung posts take
//! together compared with a delivery's lease.

#[path = "support/alert_receiver.rs"]
mod alert_receiver;
#[path = "support/fake_stripe.rs"]
mod fake_stripe;
mod support;

use std::time::{Duration, Instant};

use alert_receiver::*;
use deferral::executor::alerter::{self, AlertSettings};
use fake_stripe::FakeStripe;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_receiver_that_hangs_holds_up_no_other_receiver() {
    let fake = FakeStripe::start().await;
    let timeout = Duration::from_secs(4);
    // Listed first: its deliveries come first.
    let hung = Receiver::hanging(Duration::from_secs(30)).await;
    let up = Receiver::start().await;
    let app = spawn_adjusted(&fake, &[&hung, &up], Duration::from_millis(200), |c| {
        c.alert_timeout = timeout;
    })
    .await;
    let soon = Duration::from_millis(1500);
    for (n, event_type) in ["customer.created", "customer.updated"].into_iter().enumerate() {
        let id = failing_as(&app, &fake, &format!("evt_hang_{n}"), event_type).await;
        app.wait_for(&id, "failed", Duration::from_secs(10)).await;
        let failed = Instant::now();
        // The second one while the post of the first to the hung receiver still waits.
        let got = up.wait_for(n + 1, soon).await;
        assert!(text(&got[n]).contains(&format!("evt_hang_{n}")), "{got:?}");
        assert!(
            failed.elapsed() < soon,
            "the receiver that was up waited for the one that hangs"
        );
    }
    assert!(hung.posts() >= 2, "both were posted to the hung receiver too");
    app.stop().await;
}

/// PostgreSQL: the app and a second alerter (another owner, another pool) share the outbox.
/// Most receivers hang for the whole request timeout, so posting a claimed batch one after
/// another would outlast its lease, and the other alerter would take and send the same
/// deliveries again. Each message reaches the receiver that is up once.
#[tokio::test]
async fn two_postgres_alerters_with_hanging_receivers_send_each_alert_once() {
    if !support::on_postgres() {
        return;
    }
    let fake = FakeStripe::start().await;
    let timeout = Duration::from_millis(1000);
    let db_timeout = Duration::from_secs(2);
    let mut hung = Vec::new();
    for _ in 0..6 {
        hung.push(Receiver::hanging(Duration::from_secs(60)).await);
    }
    let up = Receiver::start().await;
    let receivers: Vec<&Receiver> = hung.iter().chain([&up]).collect();
    // Long: each type's failure is one message, all composed in the same round.
    let window = Duration::from_secs(3600);
    let app = spawn_adjusted(&fake, &receivers, window, |c| {
        c.alert_timeout = timeout;
        c.db_timeout = db_timeout;
    })
    .await;
    let other = deferral::store::Store::open_with(&app.database_url, db_timeout)
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let second = alerter::spawn(
        other.clone(),
        AlertSettings {
            receivers: receivers.iter().map(|r| r.url.clone()).collect(),
            window,
            retry_interval: Duration::from_millis(100),
            timeout,
            public_url: PUBLIC.into(),
            retention: Duration::from_secs(3600),
        },
        stop.clone(),
    );

    let types = ["customer.created", "customer.updated", "customer.deleted"];
    let mut ids = Vec::new();
    for (n, event_type) in types.into_iter().enumerate() {
        ids.push(failing_as(&app, &fake, &format!("evt_lease_{n}"), event_type).await);
    }
    for id in &ids {
        app.wait_for(id, "failed", Duration::from_secs(20)).await;
    }
    // One after another, the 18 posts to the hung receivers would take 18 s: twice the lease.
    let lease = (timeout + db_timeout) * 3;
    let deadline = Instant::now() + lease * 2;
    while up.accepted().len() < types.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past a lease of the last delivery: one taken twice has been sent twice.
    tokio::time::sleep(lease + timeout).await;
    let got = up.accepted();
    let mut footers: Vec<String> = got.iter().map(footer).collect();
    footers.sort();
    let all = footers.len();
    footers.dedup();
    assert_eq!(footers.len(), all, "a message was delivered twice: {footers:?}");
    assert_eq!(all, types.len(), "every message, once: {footers:?}");
    assert!(hung.iter().all(|h| h.posts() > 0), "every hung receiver was posted to");

    stop.cancel();
    second.await.unwrap();
    other.close().await;
    app.stop().await;
}
