//! `deferral reconcile` inside Stripe's rate limits: a 429 on the list is waited out (its
//! `Retry-After`) up to three times per page, and the command spends the server's budget
//! (`STRIPE_API_RATE`), not a default one of its own.

use std::time::Duration;

use super::fake_stripe::{FakeStripe, Fault, KEY, Limits};
use super::support::TestApp;
use super::{listed, per_event, reconcile, reconcile_ok, reconcile_with, server, text};

/// Stripe's 429 (`endpoint-rate`, `Retry-After: 1`), `n` times in a row.
fn rate_limited(n: usize) -> Vec<Option<Fault>> {
    vec![Some(Fault::RateLimited { retry_after: 1 }); n]
}

#[tokio::test]
async fn a_429_is_waited_out_three_times_then_the_run_stops() {
    let fake = FakeStripe::start().await;
    let app = server(&fake, Duration::ZERO).await;
    for n in 0..150 {
        fake.add_event(&listed(n, 3600 - n as i64).1, false);
    }
    // The first page answers 429 once; the second three times: each is waited out.
    fake.fail_list([rate_limited(1), vec![None], rate_limited(3)].concat());
    let out = reconcile_ok(&app, &fake, &[]).await;
    assert!(
        out.contains("2 pages read, 150 events seen, 150 new executions"),
        "{out}"
    );
    assert_eq!(per_event(&app).await.len(), 150);
    let queries = fake.list_queries();
    assert_eq!(queries.len(), 6, "2 pages, 4 of them asked again: {queries:?}");
    assert_eq!(queries[0], queries[1], "the same page asked again");

    // A fourth 429 in a row ends the run with Stripe's answer; what was stored stays.
    fake.add_event(&listed(150, 60).1, false);
    fake.fail_list(rate_limited(4));
    let out = reconcile(&app, &fake, Some(KEY), &[]).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.contains("Stripe answered 429 rate_limit") && stderr.contains("stopped after 0 pages"),
        "{stderr}"
    );
    assert_eq!(per_event(&app).await.len(), 150);
    app.stop().await;
}

#[tokio::test]
async fn the_command_spends_stripe_api_rate() {
    let fake = FakeStripe::start().await;
    // No key for the server: its executor makes no Stripe call, only the command does.
    let app = TestApp::spawn().await;
    for n in 0..300 {
        fake.add_event(&listed(n, 3600 - n as i64).1, false);
    }
    // Stripe's limit here is two list requests a second, Deferral's budget one: the budget
    // spaces the pages so Stripe never refuses one. Without it, the pages come as fast as they
    // are stored, and Stripe answers 429.
    fake.limit(Limits {
        live: 100,
        test: 100,
        endpoint: 2,
    });
    let out = reconcile_with(&app, &fake, Some(KEY), &[], &[("STRIPE_API_RATE", "endpoint=1")]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("3 pages read, 300 events seen"), "{stdout}");
    assert_eq!(fake.rate_limited(), 0, "a list request went over Stripe's limit");
    assert_eq!(fake.list_queries().len(), 3);
    app.stop().await;
}
