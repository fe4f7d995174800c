//! Stripe failing part-way, a refused key (401) or an error of its own (500), in the command and
//! in the server's sweep: the run stops with Stripe's error, what it stored stays stored and is
//! recorded, and the next run stores the rest, each event once.

use std::time::Duration;

use super::fake_stripe::{FakeStripe, Fault, KEY};
use super::{each_once, fake_listing, per_event, reconcile, reconcile_ok, server, text, wait_for_sweeps};

const EXPIRED: &str = "Stripe answered 401 invalid_request_error: Expired API Key provided";
const UNKNOWN: &str = "Stripe answered 500 api_error: An unknown error occurred while processing the request.";

/// 250 events Stripe could not deliver: three pages, the second of which fails once with `fault`.
async fn failing_on_page_two(fault: Fault) -> FakeStripe {
    let fake = fake_listing(250, Duration::ZERO).await;
    fake.fail_list([None, Some(fault)]);
    fake
}

async fn the_command_stops_and_the_next_run_goes_on(fault: Fault, says: &str) {
    let fake = failing_on_page_two(fault).await;
    let app = server(&fake, Duration::ZERO).await;
    let out = reconcile(&app, &fake, Some(KEY), &[]).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains(says), "{stderr}");
    assert!(
        stderr.contains("stopped after 1 page; the 100 new executions stored stay stored"),
        "{stderr}"
    );
    assert_eq!(per_event(&app).await.len(), 100);
    let failed = &app.store.recent_sweeps(None, 1).await.unwrap()[0];
    assert!(failed.error.as_deref().unwrap().starts_with(says), "{failed:?}");
    assert_eq!((failed.pages, failed.added), (1, 100));

    let out = reconcile_ok(&app, &fake, &[]).await;
    assert!(out.contains("150 new executions (100 already stored)"), "{out}");
    each_once(&app, 250).await;
    app.stop().await;
}

#[tokio::test]
async fn the_command_refused_mid_way_keeps_what_it_stored() {
    the_command_stops_and_the_next_run_goes_on(Fault::Unauthorized, EXPIRED).await;
}

#[tokio::test]
async fn the_command_failing_on_stripes_500_mid_way_keeps_what_it_stored() {
    the_command_stops_and_the_next_run_goes_on(Fault::ServerError, UNKNOWN).await;
}

async fn the_sweep_stops_and_the_next_one_goes_on(fault: Fault, says: &str) {
    let fake = failing_on_page_two(fault).await;
    let app = server(&fake, Duration::from_millis(500)).await;
    let sweeps = wait_for_sweeps(&app, 2).await;
    let first = sweeps.last().unwrap();
    assert!(first.error.as_deref().unwrap().starts_with(says), "{first:?}");
    assert_eq!((first.pages, first.added), (1, 100));
    let next = &sweeps[sweeps.len() - 2];
    assert_eq!((next.error.as_deref(), next.added, next.seen), (None, 150, 250));
    each_once(&app, 250).await;
    app.stop().await;
}

#[tokio::test]
async fn a_sweep_refused_mid_way_says_why_and_the_next_one_goes_on() {
    the_sweep_stops_and_the_next_one_goes_on(Fault::Unauthorized, EXPIRED).await;
}

#[tokio::test]
async fn a_sweep_failing_on_stripes_500_mid_way_says_why_and_the_next_one_goes_on() {
    the_sweep_stops_and_the_next_one_goes_on(Fault::ServerError, UNKNOWN).await;
}
