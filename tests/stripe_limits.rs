//! Stripe's rate limits: a burst of events that each re-fetch from the API stays inside
//! Deferral's budget (`STRIPE_API_RATE`), so the fake Stripe, enforcing limits like Stripe's,
//! answers (almost) no 429 and every execution succeeds on its first attempt; executions that
//! make no Stripe call are not held up meanwhile; and two processes on one PostgreSQL database
//! share one budget. Limits are scaled down (10/s, 100 events) so the tests take seconds.

#[path = "support/fake_stripe.rs"]
mod fake_stripe;
mod processes;
mod support;

use std::time::{Duration, Instant};

use deferral::fixtures::Fixture;
use deferral::stripe::API_VERSION;
use fake_stripe::{FakeStripe, Fault, KEY, Limits};
use support::TestApp;

const EVENTS: usize = 100;
/// Deferral's budget in these tests, per endpoint (`GET /v1/events/{id}` is the one in use).
const RATE: &str = "test=20,endpoint=10";
/// What the fake allows: a little above Deferral's budget, as Stripe's limits are above Deferral's share.
const FAKE_LIMITS: Limits = Limits {
    live: 100,
    test: 25,
    endpoint: 12,
};

/// `customer.created` events for distinct customers (so none waits for another's turn).
fn burst(prefix: &str, n: usize) -> Vec<String> {
    let created = chrono::Utc::now().timestamp() - 60;
    (0..n)
        .map(|i| {
            support::event(
                &format!("evt_{prefix}{i:04}"),
                "customer.created",
                &format!("cus_{prefix}{i:04}"),
                created,
            )
        })
        .collect()
}

/// A server whose Stripe is `fake`, limited as Stripe limits (`FAKE_LIMITS`), spending the
/// budget `RATE` with four workers; `adjust` sets anything else.
async fn limited_app(fake: &FakeStripe, adjust: impl FnOnce(&mut deferral::config::Config)) -> TestApp {
    fake.limit(FAKE_LIMITS);
    let url = fake.url.clone();
    TestApp::spawn_with(|c| {
        c.stripe_secret_key = Some(KEY.into());
        c.stripe_api_base = url;
        c.stripe_api_rate = RATE.parse().unwrap();
        c.workers = 4;
        adjust(c);
    })
    .await
}

#[tokio::test]
async fn a_burst_stays_inside_the_budget_and_every_execution_succeeds_first_time() {
    let fake = FakeStripe::start().await;
    let app = limited_app(&fake, |_| {}).await;

    let started_ms = deferral::store::now_ms();
    let mut ids = Vec::new();
    for body in burst("b", EVENTS) {
        fake.put(&serde_json::from_str(&body).unwrap());
        ids.push(app.deliver_ok(&body).await);
    }
    // Executions that call no Stripe API (no handler: nothing to fetch) are not kept waiting
    // behind the budget: they finish while the burst is still draining.
    let quick = deliver_payload_only(&app, "q").await;
    let quick_done = Duration::from_millis((quick_finished(&app, &quick).await - started_ms).max(0) as u64);

    let mut last_finished = 0;
    for id in &ids {
        let row = app.wait_for(id, "succeeded", Duration::from_secs(40)).await;
        assert_eq!(row.attempts, 1, "{row:?}");
        assert_eq!(app.store.attempts(id).await.unwrap().len(), 1, "{row:?}");
        last_finished = last_finished.max(row.finished_at.unwrap());
    }
    let drained = Duration::from_millis((last_finished - started_ms).max(0) as u64);

    // 100 calls at 10/s take about 10 s: the budget held, and it was spent.
    assert!(drained >= Duration::from_secs(9), "drained in {drained:?}");
    assert!(drained <= Duration::from_secs(16), "drained in {drained:?}");
    assert!(
        quick_done < Duration::from_secs(5),
        "payload-only executions took {quick_done:?}"
    );
    assert!(fake.rate_limited() <= 1, "{} answered 429", fake.rate_limited());
    assert_eq!(fake.served(), EVENTS);

    // /metrics tells the calls by endpoint and status, and the time spent waiting for budget.
    let metrics = app.client.get(format!("{}/metrics", app.url)).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains(r#"deferral_stripe_calls_total{endpoint="GET /v1/events/{id}",status="200"}"#),
        "{metrics}"
    );
    assert!(metrics.contains("deferral_stripe_budget_wait_seconds_sum"), "{metrics}");
}

/// The fake counts every endpoint against the account's limits, lists too (Stripe's limits are
/// per account, whatever the endpoint).
#[tokio::test]
async fn the_fake_limits_lists_like_any_endpoint() {
    let fake = FakeStripe::start().await;
    fake.limit(Limits {
        live: 100,
        test: 100,
        endpoint: 3,
    });
    let client = reqwest::Client::new();
    for list in [
        "/v1/events?limit=1",
        "/v1/charges?payment_intent=pi_1",
        "/v1/invoice_payments?invoice=in_1",
    ] {
        let mut statuses = Vec::new();
        for _ in 0..5 {
            let r = client
                .get(format!("{}{list}", fake.url))
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap();
            let reason = r.headers().get("stripe-rate-limited-reason").cloned();
            statuses.push((r.status().as_u16(), reason.map(|v| v.to_str().unwrap().to_string())));
        }
        let limited = (429, Some("endpoint-rate".to_string()));
        assert_eq!(statuses[..3], [(200, None), (200, None), (200, None)], "{list}");
        assert_eq!(statuses[3..], [limited.clone(), limited], "{list}");
    }
    assert_eq!((fake.served(), fake.rate_limited()), (9, 6));
}

/// A burst of basil `invoice.payment_failed` events, each needing three calls on three endpoints
/// (the event, the invoice's payments, the payment intent's charges), stays inside the budget:
/// every execution succeeds first time, (almost) no call is answered 429; and executions that
/// call no Stripe API, delivered while it drains, finish long before it.
#[tokio::test]
async fn a_burst_of_calls_on_several_endpoints_stays_inside_the_budget() {
    const INVOICES: usize = 60;
    const CALLS: usize = 3;
    let fake = FakeStripe::start().await;
    // Later calls of an attempt wait in place for the budget (up to 5 s): the harness's 2 s
    // lease could run out under them on a loaded machine, and the rescuer run them twice.
    let app = limited_app(&fake, |c| c.lease = Duration::from_secs(10)).await;

    let mut bodies = Vec::new();
    for _ in 0..INVOICES {
        let f = Fixture::new("invoice.payment_failed").unwrap().api_version(API_VERSION);
        for neighbour in ["charge.failed", "payment_intent.payment_failed"] {
            fake.put(f.related(neighbour).unwrap().canonical());
        }
        fake.put_fixture(&f);
        bodies.push(f.to_json());
    }
    // Delivered at once, as Stripe sends a burst, so that it is still draining after.
    let started_ms = deferral::store::now_ms();
    let ids = futures::future::join_all(bodies.iter().map(|b| app.deliver_ok(b))).await;
    // While the burst drains, executions that call no Stripe API: the burst's executions waiting
    // on the budget (their first call given back, their later calls waiting in place) do not
    // keep them from the workers, so they do not wait for the burst to drain.
    let quick = deliver_payload_only(&app, "m").await;
    let quick_delivered = deferral::store::now_ms();
    let quick_done = quick_finished(&app, &quick).await;
    let mut last_finished = 0;
    for id in &ids {
        let row = app.wait_for(id, "succeeded", Duration::from_secs(40)).await;
        assert_eq!(row.attempts, 1, "{row:?}");
        assert_eq!(app.store.attempts(id).await.unwrap().len(), 1, "{row:?}");
        assert!(
            !row.result.as_deref().unwrap_or_default().contains("not linked"),
            "{row:?}"
        );
        last_finished = last_finished.max(row.finished_at.unwrap());
    }
    let drained = Duration::from_millis((last_finished - started_ms).max(0) as u64);

    // 180 calls at the mode's 20/s take about 9 s.
    assert!(drained >= Duration::from_secs(8), "drained in {drained:?}");
    assert!(drained <= Duration::from_secs(30), "drained in {drained:?}");
    assert!(fake.rate_limited() <= 1, "{} answered 429", fake.rate_limited());
    assert!(fake.served() >= INVOICES * CALLS, "{} served", fake.served());
    let (quick_ms, burst_ms) = (quick_done - quick_delivered, last_finished - quick_delivered);
    assert!(
        quick_ms < 4_000 && quick_ms * 2 < burst_ms,
        "payload-only executions finished {quick_ms} ms after their delivery, the burst {burst_ms} ms after"
    );
}

/// Delivers 20 events no handler takes (nothing to fetch), returning their executions.
async fn deliver_payload_only(app: &TestApp, prefix: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..20 {
        let body = support::event(
            &format!("evt_{prefix}{i}"),
            "test.no_handler",
            &format!("obj_{prefix}{i}"),
            1,
        );
        ids.push(app.deliver_ok(&body).await);
    }
    ids
}

/// Waits for the executions to succeed; when the last finished (ms).
async fn quick_finished(app: &TestApp, ids: &[String]) -> i64 {
    let mut last = 0;
    for id in ids {
        let row = app.wait_for(id, "succeeded", Duration::from_secs(30)).await;
        last = last.max(row.finished_at.unwrap());
    }
    last
}

/// A 429 from Stripe shows in /metrics as a call answered 429, by endpoint, and costs no attempt.
#[tokio::test]
async fn a_429_is_counted_in_the_metrics() {
    let fake = FakeStripe::start().await;
    let app = limited_app(&fake, |_| {}).await;
    let f = Fixture::new("customer.subscription.updated").unwrap();
    let subscription = f.object()["id"].as_str().unwrap().to_string();
    fake.put_fixture(&f);
    fake.fail(&subscription, [Fault::RateLimited { retry_after: 1 }]);
    let id = app.deliver_ok(&f.to_json()).await;
    let row = app.wait_for(&id, "succeeded", Duration::from_secs(20)).await;
    assert_eq!(row.attempts, 1, "{row:?}");

    let metrics = app.client.get(format!("{}/metrics", app.url)).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    // Only this test fetches subscriptions (the metrics are the test binary's, shared).
    for status in ["429", "200"] {
        let line =
            format!(r#"deferral_stripe_calls_total{{endpoint="GET /v1/subscriptions/{{id}}",status="{status}"}} 1"#);
        assert!(metrics.lines().any(|l| l == line), "no `{line}` in {metrics}");
    }
}

/// PostgreSQL only: two processes spend one budget between them (each takes half).
#[tokio::test]
async fn two_processes_on_postgres_share_one_budget() {
    if support::backend() != "postgres" {
        eprintln!("skipped: PostgreSQL only (DEFERRAL_TEST_BACKEND=postgres)");
        return;
    }
    let fake = FakeStripe::start().await;
    fake.limit(FAKE_LIMITS);
    let (database_url, dir) = support::fresh_database().await;
    let env = [
        ("STRIPE_SECRET_KEY", KEY),
        ("STRIPE_API_BASE", fake.url.as_str()),
        ("STRIPE_API_RATE", RATE),
        ("DEFERRAL_WORKERS", "4"),
        ("DEFERRAL_RETRY_INITIAL_INTERVAL", "50ms"),
        ("DEFERRAL_POLL_INTERVAL", "50ms"),
    ];
    let all = processes::start(2, &database_url, dir.path(), &env).await;
    // Each process counts the other within a second of its start.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let client = reqwest::Client::new();
    let started = Instant::now();
    for (i, body) in burst("p", EVENTS).iter().enumerate() {
        fake.put(&serde_json::from_str(body).unwrap());
        let (status, json) = processes::deliver(&client, &all[i % 2].url, body).await.unwrap();
        assert_eq!(status, 200, "{json}");
    }
    let db = processes::connect(&database_url).await;
    processes::wait_until_all_finished(&db, Duration::from_secs(60)).await;
    let drained = started.elapsed();

    let (succeeded, most_attempts, attempt_rows): (i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE state = 'succeeded'), MAX(attempts), (SELECT COUNT(*) FROM attempts)
         FROM executions",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(succeeded, EVENTS as i64);
    assert_eq!(most_attempts, 1);
    assert_eq!(attempt_rows, EVENTS as i64);
    // Together at 10/s, not 10/s each: the fake (12/s) would have answered many 429s.
    assert!(fake.rate_limited() <= 1, "{} answered 429", fake.rate_limited());
    assert!(drained >= Duration::from_secs(9), "drained in {drained:?}");
    for p in &all {
        let problems: Vec<String> = p.problems().into_iter().filter(|l| !l.contains("429")).collect();
        assert!(problems.is_empty(), "{}: {problems:#?}", p.name);
    }
}
