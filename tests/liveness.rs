//! What `/healthz` and `/metrics` say about the executor, as a load balancer and an operator read
//! them: the status code says whether the database answers; `executor` says whether due work
//! moves (paused work is not due); the claim age grows only while the executor cannot claim.
//! Both backends.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::lock::WriteLock;
use support::{TestApp, event};

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A short lease (the executor says degraded after a lease without progress) and deadline.
async fn spawn() -> TestApp {
    TestApp::spawn_with(|c| {
        c.lease = Duration::from_secs(1);
        c.db_timeout = Duration::from_secs(1);
        // Due a few seconds after delivery: a test can take the lock before they are.
        c.process_delay = Duration::from_secs(3);
    })
    .await
}

async fn healthz(app: &TestApp) -> (u16, Value) {
    let r = app.client.get(format!("{}/healthz", app.url)).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Polls `/healthz` until its `executor` says `wanted`, asserting a 200 each time.
async fn healthz_until(app: &TestApp, wanted: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, json) = healthz(app).await;
        assert_eq!(status, 200, "the database answers: {json}");
        if json["executor"] == wanted {
            return json;
        }
        assert!(Instant::now() < deadline, "executor never {wanted}: {json}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of `gauge` for the process whose lease owner is `owner`, as `/metrics` exports it.
async fn gauge(app: &TestApp, gauge: &str, owner: &str) -> f64 {
    let text = app.metrics().await;
    let series = format!("{gauge}{{owner=\"{owner}\"}} ");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("{series} missing:\n{text}"));
    line.trim().parse().unwrap()
}

/// The lease owner that ran `execution_id`'s first attempt: this process's.
async fn owner_of(app: &TestApp, execution_id: &str) -> String {
    let sql = "SELECT worker FROM attempts WHERE execution_id = $1";
    if app.database_url.starts_with("sqlite:") {
        let db = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
        sqlx::query_scalar(sql).bind(execution_id).fetch_one(&db).await.unwrap()
    } else {
        let db = sqlx::PgPool::connect(&app.database_url).await.unwrap();
        sqlx::query_scalar(sql).bind(execution_id).fetch_one(&db).await.unwrap()
    }
}

/// Another connection holds the write lock while executions fall due: the database answers
/// (reads pass), so `/healthz` stays 200 and load balancers keep the process; `executor` says
/// degraded, with a reason, until the lock is gone; then the work runs and it says ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_stays_200_and_says_degraded_while_the_executor_cannot_claim() {
    let app = spawn().await;
    let ids = [
        app.deliver_ok(&event("evt_live_1", "customer.created", "cus_l1", now_s()))
            .await,
        app.deliver_ok(&event("evt_live_2", "customer.created", "cus_l2", now_s()))
            .await,
    ];
    let lock = WriteLock::take(&app.database_url).await;
    let json = healthz_until(&app, "degraded", Duration::from_secs(20)).await;
    let reason = json["executor_reason"].as_str().unwrap_or_default();
    assert!(!reason.is_empty() && !reason.contains("error"), "{json}");
    assert_eq!(json["status"], "ok", "{json}");
    for id in &ids {
        assert_eq!(app.store.execution(id).await.unwrap().unwrap().state, "scheduled");
    }
    lock.release().await;
    for id in &ids {
        app.wait_for(id, "succeeded", Duration::from_secs(20)).await;
    }
    healthz_until(&app, "ok", Duration::from_secs(10)).await;
}

/// Only paused work is due: nothing is stuck, the executor says ok however long it lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_says_ok_when_only_paused_work_is_due() {
    let app = spawn().await;
    let (status, pause) = app.api_post("/api/v1/event-types/customer.created/pause").await;
    assert_eq!(status, 200, "{pause}");
    let held = app
        .deliver_ok(&event("evt_paused_1", "customer.created", "cus_p1", now_s() - 10))
        .await;
    let due = app.store.execution(&held).await.unwrap().unwrap().next_run_at.unwrap();
    // Due, and then longer than the lease (what the verdict waits for) and a few watchdog runs.
    let until = Instant::now() + Duration::from_millis((due - chrono::Utc::now().timestamp_millis()).max(0) as u64);
    while Instant::now() < until + Duration::from_secs(4) {
        let (status, json) = healthz(&app).await;
        assert_eq!((status, &json["executor"]), (200, &Value::from("ok")), "{json}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.store.execution(&held).await.unwrap().unwrap().state, "scheduled");
}

/// The claim age counts from the last claim the database answered: an idle process, claiming
/// nothing because nothing is due, stays near zero (the completion age grows); one whose claims
/// fail (the writer locked) grows, and is back near zero once they succeed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claim_age_grows_only_while_claims_fail() {
    const CLAIM_AGE: &str = "deferral_executor_last_claim_age_seconds";
    const COMPLETION_AGE: &str = "deferral_executor_last_completion_age_seconds";
    let app = spawn().await;
    let id = app
        .deliver_ok(&event("evt_age_1", "customer.created", "cus_a1", now_s() - 10))
        .await;
    app.wait_for(&id, "succeeded", Duration::from_secs(10)).await;
    let owner = owner_of(&app, &id).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (claim, completion) = (
        gauge(&app, CLAIM_AGE, &owner).await,
        gauge(&app, COMPLETION_AGE, &owner).await,
    );
    assert!(claim < 1.0, "idle, claiming nothing: claim age {claim}");
    assert!(completion > 2.5, "no completion for 3 s: {completion}");

    let lock = WriteLock::take(&app.database_url).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let locked = gauge(&app, CLAIM_AGE, &owner).await;
    lock.release().await;
    assert!(locked > 2.0, "claims fail while locked: claim age {locked}");
    // Within the longest back-off after failed claims (6.4 s), on a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(20);
    while gauge(&app, CLAIM_AGE, &owner).await > 1.0 {
        assert!(Instant::now() < deadline, "claims never succeeded again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
