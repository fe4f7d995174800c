//! Reconciliation from Stripe's events list (`GET /v1/events`, served by the fake Stripe):
//! `deferral reconcile` run as the real binary, and the server's periodic sweep. Every event
//! Stripe lists ends with one execution; those already delivered keep theirs; reconciled
//! ones say `origin: reconciled`; Stripe failing part-way keeps what was stored and the next
//! run goes on; on PostgreSQL two processes never sweep at once.

#[path = "support/fake_stripe.rs"]
mod fake_stripe;
mod processes;
mod support;

use std::collections::HashMap;
use std::process::Output;
use std::time::{Duration, Instant};

use deferral::store::SweepRow;
use fake_stripe::{FakeStripe, KEY};
use serde_json::Value;
use support::{TestApp, event};

// A few hundred executions through Stripe's budget (about 21 s of it): room for a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A customer event created `ago` seconds before now.
fn listed(n: usize, ago: i64) -> (String, String) {
    let id = format!("evt_rec_{n:04}");
    let body = event(&id, "customer.created", &format!("cus_rec_{n:04}"), now_s() - ago);
    (id, body)
}

/// A fake Stripe listing `n` events it could not deliver (of the last hour), each list request
/// answered after `delay`.
async fn fake_listing(n: usize, delay: Duration) -> FakeStripe {
    let fake = FakeStripe::start().await;
    fake.slow_list(delay);
    for i in 0..n {
        fake.add_event(&listed(i, 3600 - i as i64).1, false);
    }
    fake
}

/// Asserts that each of `n` events has one execution.
async fn each_once(app: &TestApp, n: usize) {
    let counts = per_event(app).await;
    assert_eq!(counts.len(), n);
    assert!(
        counts.values().all(|&c| c == 1),
        "an event with two executions: {counts:?}"
    );
}

/// A server on a fresh database reading from `fake`, its sweep every `interval` (`ZERO`: off).
async fn server(fake: &FakeStripe, interval: Duration) -> TestApp {
    let base = fake.url.clone();
    TestApp::spawn_with(move |c| {
        c.stripe_secret_key = Some(KEY.into());
        c.stripe_api_base = base;
        c.reconcile_interval = interval;
        // Attempts wait for Stripe's budget; on a loaded machine a 2 s lease (the harness's) ran
        // out under them now and then, and the rescuer ran them again.
        c.lease = Duration::from_secs(10);
    })
    .await
}

/// Runs the real `deferral reconcile` against the app's database and the fake Stripe.
async fn reconcile(app: &TestApp, fake: &FakeStripe, key: Option<&str>, args: &[&str]) -> Output {
    reconcile_with(app, fake, key, args, &[]).await
}

/// [`reconcile`] with more environment variables.
async fn reconcile_with(
    app: &TestApp,
    fake: &FakeStripe,
    key: Option<&str>,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = command(env!("CARGO_BIN_EXE_deferral"), app, fake, key);
    cmd.arg("reconcile").args(args).envs(env.iter().copied());
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("deferral reconcile finishes")
        .expect("run the deferral binary")
}

/// `program` with the environment of `deferral reconcile` on the app's database and the fake
/// Stripe, and `key` as STRIPE_SECRET_KEY.
fn command(program: &str, app: &TestApp, fake: &FakeStripe, key: Option<&str>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env("DATABASE_URL", &app.database_url)
        .env("STRIPE_API_BASE", &fake.url)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        .env_remove("STRIPE_SECRET_KEY")
        .env_remove("STRIPE_API_RATE")
        .env_remove("DEFERRAL_EVENT_TYPES")
        .kill_on_drop(true);
    if let Some(key) = key {
        cmd.env("STRIPE_SECRET_KEY", key);
    }
    cmd
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs it and asserts it succeeded; returns stdout.
async fn reconcile_ok(app: &TestApp, fake: &FakeStripe, args: &[&str]) -> String {
    let out = reconcile(app, fake, Some(KEY), args).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "reconcile {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// Every execution through the REST API matching `query`, all pages.
async fn executions(app: &TestApp, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = app.api(&format!("/api/v1/executions?limit=500&{query}{cursor}")).await;
        assert_eq!(status, 200, "{page}");
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return all,
        }
    }
}

/// Executions per event id.
async fn per_event(app: &TestApp) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for e in executions(app, "").await {
        *counts.entry(e["event_id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    counts
}

async fn wait_for_sweeps(app: &TestApp, n: usize) -> Vec<SweepRow> {
    let deadline = Instant::now() + WAIT;
    loop {
        let sweeps = app.store.recent_sweeps(None, 100).await.unwrap();
        if sweeps.iter().filter(|s| s.finished_at.is_some()).count() >= n {
            return sweeps;
        }
        assert!(Instant::now() < deadline, "fewer than {n} sweeps finished: {sweeps:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_missed_event_gets_one_execution_marked_reconciled() {
    let fake = FakeStripe::start().await;
    let app = server(&fake, Duration::ZERO).await;
    // 250 events Stripe lists as not delivered; 40 of them reached Deferral anyway (its answer
    // came too late for Stripe, say). Five more were delivered everywhere: not listed by default.
    for n in 0..250 {
        let (_, body) = listed(n, 3600 - n as i64);
        fake.add_event(&body, false);
        if n % 6 == 0 && n < 240 {
            app.deliver_ok(&body).await;
        }
    }
    for n in 250..255 {
        fake.add_event(&listed(n, 600).1, true);
    }
    assert_eq!(per_event(&app).await.len(), 40);

    let dry = reconcile_ok(&app, &fake, &["--dry-run"]).await;
    assert!(
        dry.contains("3 pages read, 250 events seen, 210 would be added; nothing stored (dry run)"),
        "{dry}"
    );
    assert_eq!(
        dry.lines().filter(|l| l.starts_with("would add evt_rec_")).count(),
        210,
        "{dry}"
    );
    assert!(!dry.contains("would add evt_rec_0000 "), "delivered by webhook: {dry}");
    assert_eq!(per_event(&app).await.len(), 40, "a dry run stores nothing");
    assert!(
        app.store.recent_sweeps(None, 10).await.unwrap().is_empty(),
        "a dry run records nothing"
    );

    let run = reconcile_ok(&app, &fake, &[]).await;
    assert!(
        run.contains("3 pages read, 250 events seen, 210 new executions (40 already stored)"),
        "{run}"
    );
    // Off a terminal (stdout and stderr are pipes here): one line per page, no progress bar.
    let pages: Vec<&str> = run.lines().filter(|l| l.starts_with("page ")).collect();
    assert_eq!(
        pages,
        [
            "page 1: 100 seen, 85 new",
            "page 2: 200 seen, 169 new",
            "page 3: 250 seen, 210 new"
        ],
        "{run}"
    );
    let queries = fake.list_queries();
    let last_three = &queries[queries.len() - 3..];
    for q in last_three {
        assert!(q.contains("delivery_success=false") && q.contains("limit=100"), "{q}");
        assert!(q.contains("created[gte]="), "{q}");
    }
    assert!(!last_three[0].contains("starting_after"), "{}", last_three[0]);
    assert!(
        last_three[1].contains("starting_after=evt_rec_0150"),
        "{}",
        last_three[1]
    );
    assert!(
        last_three[2].contains("starting_after=evt_rec_0050"),
        "{}",
        last_three[2]
    );

    each_once(&app, 250).await;
    let reconciled = executions(&app, "origin=reconciled").await;
    assert_eq!(reconciled.len(), 210);
    assert!(reconciled.iter().all(|e| e["origin"] == "reconciled"));
    let delivered = executions(&app, "origin=webhook").await;
    assert_eq!(delivered.len(), 40);
    assert!(
        delivered
            .iter()
            .all(|e| e["event_id"].as_str().unwrap() < "evt_rec_0240")
    );
    let sweeps = app.store.recent_sweeps(None, 10).await.unwrap();
    assert_eq!(
        (sweeps[0].trigger.as_str(), sweeps[0].added, sweeps[0].seen),
        ("command", 210, 250)
    );
    assert_eq!(sweeps[0].error, None);

    let again = reconcile_ok(&app, &fake, &[]).await;
    assert!(
        again.contains("250 events seen, 0 new executions (250 already stored)"),
        "{again}"
    );
    assert_eq!(per_event(&app).await.len(), 250);

    // --all lists the delivered ones too: only those are new.
    let all = reconcile_ok(&app, &fake, &["--all", "--since", "2h"]).await;
    assert!(all.contains("255 events seen, 5 new executions"), "{all}");
    assert!(!fake.list_queries().last().unwrap().contains("delivery_success"));

    // Each runs once, as if it had been delivered.
    let deadline = Instant::now() + WAIT;
    loop {
        let done = executions(&app, "status=succeeded").await;
        if done.len() == 255 {
            assert!(done.iter().all(|e| e["attempts"] == 1), "ran more than once");
            break;
        }
        assert!(Instant::now() < deadline, "{} of 255 succeeded", done.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn types_map_to_stripes_filters_and_bad_requests_are_refused_clearly() {
    let fake = FakeStripe::start().await;
    let app = server(&fake, Duration::ZERO).await;
    let invoice = event("evt_rec_invoice", "invoice.paid", "in_1", now_s() - 60);
    fake.add_event(&invoice, false);
    fake.add_event(&listed(1, 60).1, false);

    let out = reconcile_ok(&app, &fake, &["--type", "invoice.*"]).await;
    assert!(out.contains("1 event seen, 1 new execution"), "{out}");
    assert!(fake.list_queries().last().unwrap().contains("type=invoice.*"));
    let out = reconcile_ok(&app, &fake, &["--type", "customer.created", "--type", "invoice.paid"]).await;
    assert!(out.contains("2 events seen, 1 new execution"), "{out}");
    let q = fake.list_queries().pop().unwrap();
    assert!(q.contains("types[]=customer.created&types[]=invoice.paid"), "{q}");

    let refused = |args: Vec<String>, key: Option<&'static str>, says: &'static str| {
        let (app, fake) = (&app, &fake);
        async move {
            let before = fake.list_queries().len();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = reconcile(app, fake, key, &args).await;
            let (stdout, stderr) = text(&out);
            assert!(!out.status.success(), "{args:?} succeeded:\n{stdout}");
            assert!(stderr.contains(says), "{args:?}: {stderr}");
            fake.list_queries().len() - before
        }
    };
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mix = refused(
        strings(&["--type", "invoice.paid", "--type", "charge.*"]),
        Some(KEY),
        "not both",
    )
    .await;
    let many: Vec<String> = (0..21)
        .flat_map(|i| ["--type".into(), format!("t{i}.created")])
        .collect();
    let too_many = refused(many, Some(KEY), "at most 20").await;
    let far = refused(strings(&["--since", "31d"]), Some(KEY), "30 days").await;
    let old = (chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339();
    let from = refused(
        strings(&["--from", &old]),
        Some(KEY),
        "Stripe lists events for 30 days only",
    )
    .await;
    let both = refused(
        strings(&["--since", "1h", "--from", &old]),
        Some(KEY),
        "cannot be used with",
    )
    .await;
    let no_key = refused(vec![], None, "STRIPE_SECRET_KEY is not set").await;
    assert_eq!(
        mix + too_many + far + from + both + no_key,
        0,
        "refused before asking Stripe"
    );
    let wrong = refused(
        vec![],
        Some("sk_test_wrong"),
        "Stripe answered 401 invalid_request_error: Invalid API Key provided: sk_test_****",
    )
    .await;
    assert_eq!(wrong, 1);
    assert_eq!(per_event(&app).await.len(), 2, "nothing changed");
    app.stop().await;
}

#[tokio::test]
async fn the_sweep_stores_an_event_listed_after_start_within_one_interval() {
    let fake = FakeStripe::start().await;
    let interval = Duration::from_millis(700);
    let app = server(&fake, interval).await;
    wait_for_sweeps(&app, 1).await;

    let (id, body) = listed(7, 5);
    fake.add_event(&body, false);
    let listed_at = Instant::now();
    let execution = loop {
        if let Some(e) = executions(&app, "")
            .await
            .into_iter()
            .find(|e| e["event_id"] == id.as_str())
        {
            break e;
        }
        assert!(listed_at.elapsed() < WAIT, "the sweep never stored {id}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let took = listed_at.elapsed();
    // One interval, plus the sweep's own few requests and writes on a busy machine.
    assert!(took < interval + Duration::from_millis(800), "stored after {took:?}");
    assert_eq!(execution["origin"], "reconciled");
    let q = fake.list_queries().pop().unwrap();
    assert!(q.contains("delivery_success=false"), "{q}");
    let window_start: i64 = q
        .split('&')
        .find_map(|p| p.strip_prefix("created[gte]="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (now_s() - 72 * 3600 - window_start).abs() < 10,
        "the default 72h window: {q}"
    );

    // The console's overview shows the latest sweep.
    let cookie = format!("deferral_session={}", app.log_in().await);
    let page = app
        .client
        .get(format!("{}/", app.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Last reconciliation"), "{page}");
    assert!(page.contains("periodic sweep"), "{page}");
    app.stop().await;
}

#[path = "reconcile/failures.rs"]
mod failures;
#[path = "reconcile/handover.rs"]
mod handover;
#[path = "reconcile/limits.rs"]
mod limits;
#[path = "reconcile/origins.rs"]
mod origins;
#[path = "reconcile/shown.rs"]
mod shown;
