//! What a held execution is not: overdue (the discard deadline does not run while it is held,
//! however pauses overlap) and due (the liveness watchdog does not count it, so /healthz does
//! not call the executor stalled while only paused work waits). Both backends.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{TestApp, event};

const HELD: &str = "coupon.created";

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn pause(app: &TestApp, pattern: &str, action: &str) {
    let (status, body) = app.api_post(&format!("/api/v1/event-types/{pattern}/{action}")).await;
    assert_eq!(status, 200, "{action} {pattern}: {body}");
}

#[tokio::test]
async fn the_discard_deadline_does_not_expire_held_executions() {
    let app = TestApp::spawn_with(|c| c.discard_after = Some(Duration::from_millis(500))).await;
    pause(&app, HELD, "pause").await;
    let held = app.deliver_ok(&event("evt_deadline", HELD, "cpn_d", now_s())).await;
    // Well past its deadline while paused: not discarded.
    app.stays_scheduled(&held, Duration::from_millis(1200)).await;
    pause(&app, HELD, "resume").await;
    // Its deadline moved by the time it was held: it runs instead of being discarded.
    app.wait_for(&held, "succeeded", Duration::from_secs(10)).await;
    app.stop().await;
}

/// `coupon.created` paused, then `coupon.*`, then `coupon.created` resumed (the prefix still
/// holds its executions), then `coupon.*` resumed: the deadlines move by the whole time held,
/// from the first pause, for an execution held before either and one first stored in between.
#[tokio::test]
async fn overlapping_pauses_move_the_deadline_by_the_whole_time_held() {
    // Due at the event's `created` (whole seconds): the deadline is 1 to 2 s after delivery.
    let app = TestApp::spawn_with(|c| c.discard_after = Some(Duration::from_secs(2))).await;
    pause(&app, HELD, "pause").await;
    let early = app.deliver_ok(&event("evt_early", HELD, "cpn_e", now_s())).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let middle = app.deliver_ok(&event("evt_middle", HELD, "cpn_m", now_s())).await;
    app.stays_scheduled(&middle, Duration::from_millis(2600)).await;
    pause(&app, "coupon.*", "pause").await;
    pause(&app, HELD, "resume").await;
    // Past both deadlines, by more than the prefix's pause has lasted.
    app.stays_scheduled(&early, Duration::from_millis(300)).await;
    pause(&app, "coupon.*", "resume").await;
    for id in [&early, &middle] {
        app.wait_for(id, "succeeded", Duration::from_secs(10)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn held_executions_are_not_due_for_the_watchdog_and_healthz_stays_ok() {
    let app = TestApp::spawn().await;
    pause(&app, HELD, "pause").await;
    let held = app.deliver_ok(&event("evt_watched", HELD, "cpn_w", now_s())).await;
    // Past the stall threshold (the lease: 2 s in tests) and a round of the watchdog (1 s),
    // with nothing claimed since the start and the held execution past due.
    app.stays_scheduled(&held, Duration::from_millis(3500)).await;
    assert!(
        !app.store.claimable_exists(&[]).await.unwrap(),
        "a held execution counts as due"
    );
    let health: Value = app
        .client
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["executor"], "ok", "{health}");

    pause(&app, HELD, "resume").await;
    app.wait_for(&held, "succeeded", Duration::from_secs(10)).await;
    app.stop().await;
}
