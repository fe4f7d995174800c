//! How fast the console's executions list renders on the server with 1,000,000 executions in
//! SQLite. Ignored by default; `make bench-console` runs it in release mode and prints a table
//! for docs/benchmarks-console.md. The seeded database is kept in target/ and reused.

use std::time::{Duration, Instant};

use deferral::config::Config;

const ROWS: i64 = 1_000_000;
const RUNS: usize = 30;

const TYPES: [&str; 10] = [
    "invoice.paid",
    "invoice.payment_failed",
    "customer.created",
    "customer.updated",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "charge.succeeded",
    "charge.failed",
    "charge.dispute.created",
    "payment_intent.succeeded",
];

/// Fills the tables with SQL alone (fast): 10 types, 3 API versions, 1 in 7 live, states
/// spread like a busy day (80 % succeeded … 1 % running), created over the last 20 days.
async fn seed(url: &str) {
    let store = deferral::store::Store::open(url).await.expect("open and migrate");
    store.close().await;
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM executions")
        .fetch_one(&pool)
        .await
        .unwrap();
    if n >= ROWS {
        seed_records(&pool).await;
        return;
    }
    let started = Instant::now();
    let now = chrono::Utc::now().timestamp_millis();
    let types = TYPES
        .iter()
        .enumerate()
        .map(|(i, t)| format!("WHEN {i} THEN '{t}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let rows = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
         SELECT i,
                CASE i % 10 {types} END AS type,
                (i % 7 = 0) AS live,
                CASE i % 3 WHEN 0 THEN '2024-06-20' WHEN 1 THEN '2023-10-16' ELSE '2025-03-31.basil' END AS version,
                'cus_' || (i % 200000) AS object,
                {now} - (({ROWS} - i) * 1700) AS at,
                CASE WHEN i % 100 < 80 THEN 'succeeded' WHEN i % 100 < 87 THEN 'failed' WHEN i % 100 < 93 THEN 'scheduled'
                     WHEN i % 100 < 97 THEN 'cancelled' WHEN i % 100 < 99 THEN 'discarded' ELSE 'running' END AS state
         FROM n"
    );
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(&format!(
        "INSERT INTO events (id, type, created, livemode, api_version, object_id, object_type, payload, received_at, execution_id)
         SELECT 'evt_b' || i, type, at / 1000, live, version, object, 'customer',
                json_object('id', 'evt_b' || i, 'object', 'event', 'type', type, 'livemode', json(CASE live WHEN 1 THEN 'true' ELSE 'false' END),
                            'data', json_object('object', json_object('id', object, 'object', 'customer'))),
                at, 'exe_b' || i
         FROM ({rows})"
    ))
    .execute(&mut *tx)
    .await
    .unwrap();
    // Scheduled ones wait a day and running ones hold a long lease: the executor leaves them be.
    sqlx::query(&format!(
        "INSERT INTO executions (id, event_id, event_type, event_created, livemode, api_version, object_id, state, attempts,
                                 max_attempts, created_at, scheduled_at, next_run_at, started_at, finished_at,
                                 lease_owner, lease_expires_at, last_error, result, source)
         SELECT 'exe_b' || i, 'evt_b' || i, type, at / 1000, live, version, object, state,
                CASE state WHEN 'scheduled' THEN 0 WHEN 'discarded' THEN 0 WHEN 'failed' THEN 8 ELSE 1 END, 8,
                at, at,
                CASE state WHEN 'scheduled' THEN {now} + 86400000 WHEN 'running' THEN at END,
                CASE WHEN state IN ('scheduled', 'discarded') THEN NULL ELSE at + 5 END,
                CASE WHEN state IN ('scheduled', 'running') THEN NULL ELSE at + 20 END,
                CASE state WHEN 'running' THEN 'bench-elsewhere' END,
                CASE state WHEN 'running' THEN {now} + 86400000 END,
                CASE state WHEN 'failed' THEN 'the Stripe API answered 500' END,
                CASE state WHEN 'succeeded' THEN 'customer ' || object || ' updated' END,
                CASE state WHEN 'succeeded' THEN 'payload' END
         FROM ({rows})"
    ))
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO attempts (execution_id, number, started_at, finished_at, duration_us, outcome, error_kind, error_message)
         SELECT id, attempts, started_at, COALESCE(finished_at, started_at), 15000,
                CASE state WHEN 'succeeded' THEN 'succeeded' WHEN 'cancelled' THEN 'aborted' ELSE 'error' END,
                CASE state WHEN 'failed' THEN 'retryable' END, last_error
         FROM executions WHERE attempts > 0 AND state <> 'running'",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    seed_records(&pool).await;
    // No ANALYZE: Deferral never runs it, so the planner works as it would in production.
    pool.close().await;
    println!("seeded {ROWS} executions in {:.0?}", started.elapsed());
}

/// The records of 200,000 customers (1 in 50 on hold, 1 in 20 delinquent, 1 in 100 deleted),
/// 200,000 subscriptions, 100,000 payment failures, 100,000 notifications (a tenth pending),
/// 20,000 disputes (a fifth open). Added once, also to a database seeded before they existed.
async fn seed_records(pool: &sqlx::SqlitePool) {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM customers")
        .fetch_one(pool)
        .await
        .unwrap();
    if n > 0 {
        return;
    }
    let now = chrono::Utc::now().timestamp_millis();
    let series = |count: i64| {
        format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) SELECT i FROM n")
    };
    let statements = [
        format!("INSERT INTO customers (id, email, delinquent, deleted, on_hold, stripe_updated_at, updated_at)
             SELECT 'cus_' || i, 'c' || i || '@example.com', i % 20 = 0, i % 100 = 0, i % 50 = 0, {now} / 1000 - i, {now} - i * 1000 FROM ({})", series(200_000)),
        format!("INSERT INTO subscriptions (id, customer, status, stripe_updated_at, updated_at)
             SELECT 'sub_' || i, 'cus_' || i, CASE i % 10 WHEN 0 THEN 'past_due' WHEN 1 THEN 'canceled' WHEN 2 THEN 'trialing' ELSE 'active' END,
                    {now} / 1000 - i, {now} - i * 1000 FROM ({})", series(200_000)),
        format!("INSERT INTO payment_failures (id, customer, reason, failed_at, created_at)
             SELECT 'ch_' || i, 'cus_' || (i % 200000), CASE i % 6 WHEN 0 THEN 'insufficient_funds' WHEN 1 THEN 'expired_card' WHEN 2 THEN 'card_declined'
                    WHEN 3 THEN 'bank_restriction' WHEN 4 THEN 'authentication_required' ELSE 'other' END, {now} / 1000 - i * 17, {now} FROM ({})", series(100_000)),
        format!("INSERT INTO notifications (kind, event_id, customer, status, created_at)
             SELECT CASE i % 4 WHEN 0 THEN 'payment_failed' WHEN 1 THEN 'upcoming_charge' WHEN 2 THEN 'invoice_email' ELSE 'trial_ending' END,
                    'evt_n' || i, 'cus_' || (i % 200000), CASE WHEN i % 10 = 0 THEN 'pending' ELSE 'sent' END, {now} - (100000 - i) * 1000 FROM ({})", series(100_000)),
        format!("INSERT INTO disputes (id, customer, status, hold, outcome, stripe_updated_at, updated_at)
             SELECT 'dp_' || i, 'cus_' || (i * 10), CASE WHEN i % 5 = 0 THEN 'needs_response' ELSE 'lost' END, i % 5 = 0,
                    CASE WHEN i % 5 = 0 THEN NULL ELSE 'lost' END, {now} / 1000 - i, {now} - i * 1000 FROM ({})", series(20_000)),
    ];
    for sql in statements {
        sqlx::query(&sql).execute(pool).await.unwrap();
    }
}

/// The filtered list pages an operator opens, with what makes each one hard.
fn pages() -> Vec<(&'static str, String)> {
    vec![
        ("no filter, first page", "/".into()),
        ("livemode=true", "/?livemode=true".into()),
        ("one type", "/?type=invoice.payment_failed".into()),
        ("two types", "/?type=charge.failed&type=invoice.payment_failed".into()),
        ("API version", "/?api_version=2025-03-31.basil".into()),
        ("status=failed", "/?status=failed".into()),
        ("two statuses", "/?status=failed&status=discarded".into()),
        (
            "live + type + failed",
            "/?livemode=true&type=invoice.payment_failed&status=failed".into(),
        ),
        (
            "live + type + version + running (rare)",
            "/?livemode=true&type=charge.failed&api_version=2023-10-16&status=running".into(),
        ),
        ("search by event id", "/?q=evt_b123457".into()),
        ("search by object id (5 rows)", "/?q=cus_4242".into()),
        ("created in one day", {
            let day = chrono::Utc::now() - chrono::Duration::days(10);
            format!(
                "/?from={}&to={}",
                day.format("%Y-%m-%dT%H:%M"),
                (day + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M")
            )
        }),
        ("deep page (cursor 600k)", "/?status=succeeded&cursor=b600000".into()),
        ("detail page", "/executions/exe_b123457".into()),
        ("overview, 7 days (and the list)", "/?chart=7d".into()),
        ("customers on hold", "/records/customers?on_hold=true".into()),
        // About the 150,000th customer by last change: the walk starts deep in the index.
        (
            "customers, deep page",
            format!(
                "/records/customers?cursor={}.cus_150000",
                chrono::Utc::now().timestamp_millis() - 150_000_000
            ),
        ),
        (
            "subscriptions past due",
            "/records/subscriptions?status=past_due".into(),
        ),
        (
            "payment failures, one reason",
            "/records/payment-failures?reason=expired_card".into(),
        ),
        (
            "payment failures of a customer",
            "/records/payment-failures?customer=cus_4242".into(),
        ),
        ("notifications pending", "/records/notifications?status=pending".into()),
        ("disputes open", "/records/disputes?state=open".into()),
        ("object timeline (5 executions)", "/objects/cus_4242".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with `make bench-console`"]
async fn console_list_renders_under_100ms_with_a_million_executions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-console");
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("deferral.db").display());
    seed(&url).await;

    let mut config = Config::defaults();
    config.database_url = url;
    config.site_addr = "127.0.0.1:0".parse().unwrap();
    config.console_password = Some("bench".into());
    config.retention = Duration::from_secs(365 * 86_400);
    let running = deferral::Application::build(config).await.expect("start").spawn();
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .post(format!("{base}/console/fn/login"))
        .form(&[("password", "bench")])
        .send()
        .await
        .unwrap();
    let cookie = match login.headers().get("set-cookie") {
        Some(c) => c.to_str().unwrap().split(';').next().unwrap().to_string(),
        None => panic!("login failed: {} {}", login.status(), login.text().await.unwrap()),
    };

    println!("\n| page | rows | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|---:|");
    let mut worst_p50 = 0.0f64;
    for (name, path) in pages() {
        let get = || {
            client
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .header("accept", "text/html")
                .send()
        };
        let body = get().await.unwrap().text().await.unwrap(); // warm-up
        assert!(!body.contains("role=\"alert\""), "{name}: the page shows an error");
        let rows = body.matches("<tr data-id=").count() + body.matches("<li data-id=").count();
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let t = Instant::now();
            let resp = get().await.unwrap();
            assert_eq!(resp.status(), 200, "{name}");
            resp.bytes().await.unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let (p50, p95, max) = (times[RUNS / 2], times[RUNS * 95 / 100], times[RUNS - 1]);
        worst_p50 = worst_p50.max(p50);
        println!("| {name} (`{path}`) | {rows} | {p50:.1} | {p95:.1} | {max:.1} |");
    }
    running.stop().await.unwrap();
    assert!(
        worst_p50 < 100.0,
        "a filtered list took {worst_p50:.1} ms at the median"
    );
}
