//! Pausing an event type holds its executions (stored, scheduled, not run) until it is resumed:
//! new ones, ones scheduled for later and ones waiting in back-off after a failed attempt; an
//! attempt already running finishes. Other types run meanwhile, the pause survives a restart,
//! resume runs the held executions in per-object order, and a prefix pattern holds every
//! matching type. Both backends.

#[path = "support/fake_stripe.rs"]
mod fake_stripe;
mod processes;
#[path = "support/stripe_env.rs"]
mod stripe_env;
mod support;

use std::time::{Duration, Instant};

use fake_stripe::Fault;
use stripe_env::Env;
use support::{TestApp, event, type_entry};

const HELD: &str = "coupon.created";
const FREE: &str = "product.created";

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn a_paused_type_is_stored_but_not_run_while_other_types_run() {
    // Each execution is due 3 s after its event's `created` (whole seconds: 2 to 3 s after the
    // delivery), so the pause surely comes first.
    let app = TestApp::spawn_with(|c| c.process_delay = Duration::from_secs(3)).await;
    // Scheduled before the pause (due seconds later), and new after it: both are held.
    let early = app.deliver_ok(&event("evt_early", HELD, "cpn_early", now_s())).await;
    let (status, pause) = app.api_post(&format!("/api/v1/event-types/{HELD}/pause")).await;
    assert_eq!(status, 200, "{pause}");
    assert_eq!(pause["pattern"], HELD);
    assert_eq!(pause["paused_by"], "api");
    let due = app.store.execution(&early).await.unwrap().unwrap().next_run_at.unwrap();
    assert!(due > chrono::Utc::now().timestamp_millis(), "paused before it was due");
    let held = app.deliver_ok(&event("evt_held", HELD, "cpn_1", now_s())).await;
    let free = app.deliver_ok(&event("evt_free", FREE, "prod_1", now_s())).await;
    app.wait_for(&free, "succeeded", Duration::from_secs(10)).await;
    // Both are past due now, and neither runs.
    let due_by = app.store.execution(&held).await.unwrap().unwrap().next_run_at.unwrap();
    let wait = (due_by - chrono::Utc::now().timestamp_millis()).max(0) as u64 + 600;
    app.stays_scheduled(&held, Duration::from_millis(wait)).await;
    app.stays_scheduled(&early, Duration::ZERO).await;
    assert_eq!(app.store.execution(&early).await.unwrap().unwrap().attempts, 0);

    // Held executions are not due: the backlog (liveness, the backlog-age gauge) leaves them out.
    assert_eq!(app.store.backlog().await.unwrap().0, 0);

    let (status, list) = app.api("/api/v1/event-types").await;
    assert_eq!(status, 200, "{list}");
    let held_type = type_entry(&list, HELD);
    assert_eq!(held_type["paused"]["pattern"], HELD, "{list}");
    let scheduled = 2;
    assert_eq!(held_type["counts"]["scheduled"], scheduled, "{list}");
    assert_eq!(held_type["paused"]["holds"], scheduled, "{list}");
    assert!(type_entry(&list, FREE)["paused"].is_null(), "{list}");
    assert_eq!(type_entry(&list, FREE)["counts"]["succeeded"], 1, "{list}");
    assert_eq!(list["pauses"][0]["holds"], scheduled, "{list}");

    // Pausing again keeps the first pause.
    let (status, again) = app.api_post(&format!("/api/v1/event-types/{HELD}/pause")).await;
    assert_eq!(status, 200);
    assert_eq!(again["paused_at"], pause["paused_at"]);

    let (status, lifted) = app.api_post(&format!("/api/v1/event-types/{HELD}/resume")).await;
    assert_eq!(status, 200, "{lifted}");
    app.wait_for(&held, "succeeded", Duration::from_secs(10)).await;
    app.wait_for(&early, "succeeded", Duration::from_secs(10)).await;
    let (_, list) = app.api("/api/v1/event-types").await;
    assert!(type_entry(&list, HELD)["paused"].is_null(), "{list}");
    assert_eq!(list["pauses"], serde_json::json!([]));
    app.stop().await;
}

/// A type whose handler reads the event from the Stripe API (coupons have no handler).
const FETCHED: &str = "customer.created";

/// An event of [`FETCHED`] the fake Stripe serves after `faults`, delivered; its execution's id.
async fn served_after(env: &Env, id: &str, faults: Vec<Fault>) -> String {
    let body = event(id, FETCHED, &format!("cus_{id}"), now_s());
    env.fake().put(&serde_json::from_str(&body).unwrap());
    env.fake().fail(id, faults);
    env.app.deliver_ok(&body).await
}

#[tokio::test]
async fn an_execution_waiting_in_back_off_is_held_and_retried_after_resume() {
    let backoff = Duration::from_millis(1500);
    let env = Env::with_api_and(|c| {
        c.retry_initial_interval = backoff;
        c.retry_max_interval = backoff;
    })
    .await;
    let app = &env.app;
    // The first attempt fails with Stripe's 500 (retryable): back-off until its retry time.
    let id = served_after(&env, "evt_backoff", vec![Fault::ServerError]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let row = loop {
        let row = app.store.execution(&id).await.unwrap().unwrap();
        if row.attempts == 1 && row.state == "scheduled" {
            break row;
        }
        assert!(Instant::now() < deadline, "no failed first attempt: {row:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(row.last_error.is_some(), "{row:?}");
    let (status, _) = app.api_post(&format!("/api/v1/event-types/{FETCHED}/pause")).await;
    assert_eq!(status, 200);
    let retry_at = row.next_run_at.unwrap();
    assert!(
        retry_at > chrono::Utc::now().timestamp_millis(),
        "paused while in back-off"
    );
    // Well past its retry time: still scheduled, no second attempt, Stripe not asked again.
    app.stays_scheduled(&id, backoff + Duration::from_millis(800)).await;
    assert_eq!(env.fake().requests_for("evt_backoff"), 1);
    let (_, list) = app.api("/api/v1/event-types").await;
    assert_eq!(type_entry(&list, FETCHED)["paused"]["holds"], 1, "{list}");

    let resumed = chrono::Utc::now().timestamp_millis();
    let (status, _) = app.api_post(&format!("/api/v1/event-types/{FETCHED}/resume")).await;
    assert_eq!(status, 200);
    let row = app.wait_for(&id, "succeeded", Duration::from_secs(10)).await;
    assert_eq!(row.attempts, 2, "{row:?}");
    assert!(
        row.started_at.unwrap() >= resumed,
        "the retry ran only once resumed: {row:?}"
    );
    env.app.stop().await;
}

#[tokio::test]
async fn an_attempt_running_when_its_type_is_paused_finishes() {
    let env = Env::with_api().await;
    let app = &env.app;
    // Stripe answers the first attempt's fetch slowly: the pause lands while it runs.
    let slow = Duration::from_millis(2500);
    let id = served_after(&env, "evt_running", vec![Fault::Slow(slow)]).await;
    app.wait_for(&id, "running", Duration::from_secs(10)).await;
    let (status, _) = app.api_post(&format!("/api/v1/event-types/{FETCHED}/pause")).await;
    assert_eq!(status, 200);
    assert_eq!(app.store.execution(&id).await.unwrap().unwrap().state, "running");
    // A new one of the type is held meanwhile: the pause is in force.
    let later = served_after(&env, "evt_after", vec![]).await;

    let row = app.wait_for(&id, "succeeded", Duration::from_secs(10)).await;
    assert_eq!(row.attempts, 1, "not aborted, not retried: {row:?}");
    app.stays_scheduled(&later, Duration::from_millis(300)).await;
    let (status, _) = app.api_post(&format!("/api/v1/event-types/{FETCHED}/resume")).await;
    assert_eq!(status, 200);
    app.wait_for(&later, "succeeded", Duration::from_secs(10)).await;
    env.app.stop().await;
}

#[tokio::test]
async fn a_pause_holds_across_a_restart() {
    let app = TestApp::spawn().await;
    let (status, _) = app.api_post(&format!("/api/v1/event-types/{HELD}/pause")).await;
    assert_eq!(status, 200);
    let held = app.deliver_ok(&event("evt_restart", HELD, "cpn_r", now_s())).await;
    app.stays_scheduled(&held, Duration::from_millis(300)).await;
    let config = support::test_config(&app.database_url);
    let dir = app.stop().await;

    let app = TestApp::start(config, dir).await;
    app.stays_scheduled(&held, Duration::from_millis(800)).await;
    let (status, _) = app.api_post(&format!("/api/v1/event-types/{HELD}/resume")).await;
    assert_eq!(status, 200);
    app.wait_for(&held, "succeeded", Duration::from_secs(10)).await;
    app.stop().await;
}

#[tokio::test]
async fn resume_runs_held_executions_in_per_object_order_and_later_ones_wait_behind_them() {
    let app = TestApp::spawn().await;
    let (status, _) = app.api_post(&format!("/api/v1/event-types/{HELD}/pause")).await;
    assert_eq!(status, 200);
    let t = now_s() - 100;
    // Delivered out of order: per-object order follows the events' `created`.
    let second = app.deliver_ok(&event("evt_o2", HELD, "obj_1", t + 2)).await;
    let first = app.deliver_ok(&event("evt_o1", HELD, "obj_1", t + 1)).await;
    // Not paused, but a later event of the same object: it waits behind the held ones.
    let third = app.deliver_ok(&event("evt_o3", FREE, "obj_1", t + 3)).await;
    // Another object of the free type runs meanwhile.
    let other = app.deliver_ok(&event("evt_other", FREE, "obj_2", t + 3)).await;
    app.wait_for(&other, "succeeded", Duration::from_secs(10)).await;
    app.stays_scheduled(&third, Duration::from_millis(500)).await;

    // The console says why it waits: behind an execution of the same object, which is held.
    let row = app.store.execution(&third).await.unwrap().unwrap();
    match app.store.waiting(&row).await.unwrap() {
        Some(domain::event_types::Waiting::BehindObject {
            execution_id, paused, ..
        }) => {
            assert_eq!(execution_id, first);
            assert_eq!(paused.expect("held").pattern, HELD);
        }
        other => panic!("expected to wait behind {first}: {other:?}"),
    }
    let row = app.store.execution(&first).await.unwrap().unwrap();
    assert!(matches!(
        app.store.waiting(&row).await.unwrap(),
        Some(domain::event_types::Waiting::Paused(_))
    ));
    // And so does its page: the execution it waits behind, and that one is held.
    let token = app.log_in().await;
    let (_, page) = app.page(&format!("/executions/{third}"), &token).await;
    assert!(page.contains("Waiting: "), "{page}");
    assert!(page.contains(&format!("/executions/{first}")), "{page}");
    assert!(
        page.contains(&format!("which is held: {HELD} is paused as {HELD}")),
        "{page}"
    );

    let (status, _) = app.api_post(&format!("/api/v1/event-types/{HELD}/resume")).await;
    assert_eq!(status, 200);
    let mut rows = Vec::new();
    for id in [&first, &second, &third] {
        rows.push(app.wait_for(id, "succeeded", Duration::from_secs(10)).await);
    }
    for pair in rows.windows(2) {
        assert!(
            pair[0].finished_at.unwrap() <= pair[1].started_at.unwrap(),
            "{} started before {} finished",
            pair[1].id,
            pair[0].id
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_prefix_pause_holds_every_matching_type_even_ones_first_seen_later() {
    let app = TestApp::spawn().await;
    let (status, pause) = app.api_post("/api/v1/event-types/coupon.*/pause").await;
    assert_eq!(status, 200, "{pause}");
    let created = app
        .deliver_ok(&event("evt_p1", "coupon.created", "cpn_1", now_s()))
        .await;
    let deleted = app
        .deliver_ok(&event("evt_p2", "coupon.deleted", "cpn_2", now_s()))
        .await;
    // `_` is no wildcard: `coupon_x.created` does not start with `coupon.`.
    let unrelated = app
        .deliver_ok(&event("evt_p3", "coupon_x.created", "cpn_3", now_s()))
        .await;
    app.wait_for(&unrelated, "succeeded", Duration::from_secs(10)).await;
    app.stays_scheduled(&created, Duration::from_millis(400)).await;
    app.stays_scheduled(&deleted, Duration::ZERO).await;

    let (_, list) = app.api("/api/v1/event-types").await;
    assert_eq!(type_entry(&list, "coupon.created")["paused"]["pattern"], "coupon.*");
    assert_eq!(type_entry(&list, "coupon.deleted")["paused"]["pattern"], "coupon.*");
    assert!(type_entry(&list, "coupon_x.created")["paused"].is_null());
    assert_eq!(list["pauses"][0]["holds"], 2, "{list}");

    // A type held by a prefix is resumed through the prefix: the refusal says which.
    let (status, refused) = app.api_post("/api/v1/event-types/coupon.created/resume").await;
    assert_eq!(status, 404, "{refused}");
    assert_eq!(refused["error"], "not_paused");
    assert!(refused["message"].as_str().unwrap().contains("coupon.*"), "{refused}");

    let (status, _) = app.api_post("/api/v1/event-types/coupon.*/resume").await;
    assert_eq!(status, 200);
    app.wait_for(&created, "succeeded", Duration::from_secs(10)).await;
    app.wait_for(&deleted, "succeeded", Duration::from_secs(10)).await;
    app.stop().await;
}

#[tokio::test]
async fn bad_patterns_and_unknown_actions_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    for bad in ["in*voice", "a%20b", "invoice.**", "%27%3B%20DROP%20TABLE%20executions"] {
        let (status, body) = app.api_post(&format!("/api/v1/event-types/{bad}/pause")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_pattern", "{body}");
    }
    let long = "a".repeat(201);
    let (status, _) = app.api_post(&format!("/api/v1/event-types/{long}/pause")).await;
    assert_eq!(status, 400);
    let (status, body) = app.api_post("/api/v1/event-types/invoice.paid/resume").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_paused")), "{body}");
    let (status, _) = app.api_post("/api/v1/event-types/invoice.paid/explode").await;
    assert_eq!(status, 404);
    assert!(app.store.pauses().await.unwrap().is_empty());
    // Without the token: 401, nothing paused.
    let resp = app
        .client
        .post(format!("{}/api/v1/event-types/invoice.paid/pause", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(app.store.pauses().await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn the_console_pauses_and_resumes_without_javascript_and_says_what_is_held() {
    let app = TestApp::spawn().await;
    // Without a session: refused, nothing paused.
    for name in ["set_paused", "event_types", "pauses", "alerts"] {
        let resp = app
            .client
            .post(format!("{}/console/fn/{name}", app.url))
            .form(&[("pattern", HELD), ("action", "pause"), ("back", "/")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{name}");
    }
    assert!(app.store.pauses().await.unwrap().is_empty());

    let token = app.log_in().await;
    let cookie = format!("deferral_session={token}");
    let post = |action: &'static str| {
        app.client
            .post(format!("{}/console/fn/set_paused", app.url))
            .header("Cookie", &cookie)
            .header("Accept", "text/html")
            .form(&[("pattern", HELD), ("action", action), ("back", "/")])
            .send()
    };
    let resp = post("pause").await.unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/?done=pause"), "{location}");
    let pauses = app.store.pauses().await.unwrap();
    assert_eq!(
        (pauses[0].pattern.as_str(), pauses[0].paused_by.as_str()),
        (HELD, "operator")
    );
    let held = app.deliver_ok(&event("evt_console", HELD, "cpn_c", now_s())).await;
    app.stays_scheduled(&held, Duration::from_millis(300)).await;

    let (_, list) = app.page("/", &token).await;
    assert!(list.contains(&format!("{HELD} is paused")), "{list}");
    assert!(list.contains("holds 1 scheduled execution."), "{list}");
    let (_, types) = app.page("/event-types", &token).await;
    assert!(types.contains("paused by operator"), "{types}");
    let (_, detail) = app.page(&format!("/executions/{held}"), &token).await;
    assert!(detail.contains("Held: "), "{detail}");

    let resp = post("resume").await.unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    assert!(app.store.pauses().await.unwrap().is_empty());
    app.wait_for(&held, "succeeded", Duration::from_secs(10)).await;
    // Both actions are on record, as the operator's.
    let (_, audit) = app.api("/api/v1/audit").await;
    let done: Vec<(&str, &str, &str)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
                e["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        done,
        [("resume", HELD, "operator"), ("pause", HELD, "operator")],
        "{audit}"
    );
    app.stop().await;
}

/// PostgreSQL: a pause made through one process holds in every process; resumed through
/// another, the held executions run.
#[tokio::test]
async fn two_postgres_processes_agree_on_a_pause() {
    if !support::on_postgres() {
        return;
    }
    let (database_url, dir) = support::fresh_database().await;
    let env = [
        ("DEFERRAL_API_TOKEN", support::API_TOKEN),
        ("DEFERRAL_POLL_INTERVAL", "50ms"),
    ];
    let procs = processes::start(2, &database_url, dir.path(), &env).await;
    let client = reqwest::Client::new();
    let post = |url: String| client.post(url).bearer_auth(support::API_TOKEN).send();
    let resp = post(format!("{}/api/v1/event-types/{HELD}/pause", procs[0].url))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut ids = Vec::new();
    for (i, p) in procs.iter().enumerate() {
        for n in 0..5 {
            let body = event(&format!("evt_pg_{i}_{n}"), HELD, &format!("cpn_{i}_{n}"), now_s());
            let (status, json) = processes::deliver(&client, &p.url, &body).await.unwrap();
            assert_eq!(status, 200, "{json}");
            ids.push(json["execution_id"].as_str().unwrap().to_string());
        }
    }
    let free = event("evt_pg_free", FREE, "prod_pg", now_s());
    processes::deliver(&client, &procs[1].url, &free).await.unwrap();
    let db = processes::connect(&database_url).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (done,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM executions WHERE event_type = $1 AND state = 'succeeded'")
                .bind(FREE)
                .fetch_one(&db)
                .await
                .unwrap();
        if done == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the free type never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (started,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM executions WHERE event_type = $1 AND attempts > 0")
        .bind(HELD)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(started, 0, "a process ran a held execution");

    let resp = post(format!("{}/api/v1/event-types/{HELD}/resume", procs[1].url))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    processes::wait_until_all_finished(&db, Duration::from_secs(20)).await;
    let (succeeded,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM executions WHERE event_type = $1 AND state = 'succeeded'")
            .bind(HELD)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(succeeded, ids.len() as i64);
}
