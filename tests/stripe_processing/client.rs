//! The Stripe client's answers to what Stripe does wrong or slowly: missing events, refused
//! keys, rate limits, server errors, timeouts, malformed objects; and the types it skips.

use super::*;

#[tokio::test]
async fn events_are_fetched_with_the_key_the_account_and_the_configured_version() {
    let env = Env::with_api().await;
    let f = fixture("customer.created").customer("cus_X").account("acct_1Connected");
    env.process(&f).await;
    let seen = env.fake().requests();
    let get = seen
        .iter()
        .find(|s| s.path == format!("/v1/events/{}", f.event_id()))
        .expect("the event was fetched");
    assert_eq!(get.authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(get.account.as_deref(), Some("acct_1Connected"));
    assert_eq!(get.version.as_deref(), Some(deferral::stripe::API_VERSION));
}

#[tokio::test]
async fn a_missing_event_fails_at_once_with_stripes_message() {
    let env = Env::with_api().await;
    let f = fixture("customer.created");
    env.fake().fail(f.event_id(), [Fault::Missing]);
    let row = env.failed(&f).await;
    assert_eq!(row.attempts, 1);
    let error = row.last_error.unwrap();
    assert!(error.contains("404 resource_missing: No such event"), "{error}");
    assert_eq!(
        env.app
            .store
            .customer(f.object()["id"].as_str().unwrap())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_refused_key_fails_at_once() {
    let env = Env::with_api_and(|c| c.stripe_secret_key = Some("sk_test_revoked".into())).await;
    let row = env.failed(&fixture("customer.created")).await;
    assert_eq!(row.attempts, 1);
    let error = row.last_error.unwrap();
    assert!(
        error.starts_with("Stripe answered 401") && error.contains("Invalid API Key provided"),
        "{error}"
    );

    let env = Env::with_api().await;
    let f = fixture("customer.created");
    env.fake().fail(f.event_id(), [Fault::Unauthorized]);
    assert_eq!(env.failed(&f).await.attempts, 1);
}

#[tokio::test]
async fn a_429_costs_no_attempt_and_waits_for_retry_after() {
    let env = Env::with_api_and(|c| c.max_attempts = 1).await;
    let f = fixture("customer.created");
    // Even with a single try allowed, Stripe's 429s neither fail the execution nor count.
    env.fake().fail(
        f.event_id(),
        [
            Fault::RateLimited { retry_after: 1 },
            Fault::RateLimited { retry_after: 1 },
        ],
    );
    let row = env.process(&f).await;
    assert_eq!(row.attempts, 1, "{row:?}");
    assert_eq!(env.app.store.attempts(&row.id).await.unwrap().len(), 1);
    assert_eq!(env.fake().requests_for(f.event_id()), 3);
    // Stripe asked for a second, twice (the test back-off is 50 ms).
    let waited = row.finished_at.unwrap() - row.created_at;
    assert!(waited >= 1_900, "{waited} ms");
}

#[tokio::test]
async fn server_errors_and_conflicts_are_retried() {
    let env = Env::with_api().await;
    let f = fixture("customer.created");
    env.fake().fail(
        f.event_id(),
        [
            Fault::ServerError,
            Fault::Status {
                status: 409,
                should_retry: None,
            },
        ],
    );
    let row = env.process(&f).await;
    assert_eq!(row.attempts, 3);
    let attempts = env.app.store.attempts(&row.id).await.unwrap();
    assert_eq!(attempts[0].error_kind.as_deref(), Some("retryable"));
    assert!(attempts[0].error_message.as_deref().unwrap().contains("500 api_error"));
    assert!(attempts[1].error_message.as_deref().unwrap().contains("409"));
}

#[tokio::test]
async fn stripe_should_retry_overrides_the_status() {
    let env = Env::with_api().await;
    let no = fixture("customer.created");
    env.fake().fail(
        no.event_id(),
        [Fault::Status {
            status: 503,
            should_retry: Some(false),
        }],
    );
    assert_eq!(env.failed(&no).await.attempts, 1);

    let yes = fixture("customer.created");
    env.fake().fail(
        yes.event_id(),
        [Fault::Status {
            status: 400,
            should_retry: Some(true),
        }],
    );
    assert_eq!(env.process(&yes).await.attempts, 2);
}

#[tokio::test]
async fn a_slow_stripe_times_out_and_is_retried() {
    // The client's whole-request timeout stays below the attempt's (here 1 s).
    let env = Env::with_api_and(|c| c.max_duration = Duration::from_secs(1)).await;
    let f = fixture("customer.created");
    env.fake().fail(f.event_id(), [Fault::Slow(Duration::from_secs(3))]);
    let row = env.process(&f).await;
    assert_eq!(row.attempts, 2);
    let attempts = env.app.store.attempts(&row.id).await.unwrap();
    let error = attempts[0].error_message.as_deref().unwrap();
    assert!(error.contains("Stripe did not answer within"), "{error}");
}

#[tokio::test]
async fn an_unreachable_stripe_is_retried() {
    let env = Env::with_api_and(|c| {
        c.stripe_api_base = "http://127.0.0.1:9".into(); // the discard port: refused
        c.max_attempts = 2;
    })
    .await;
    let row = env.failed(&fixture("customer.created")).await;
    assert_eq!(row.attempts, 2);
    assert!(row.last_error.unwrap().contains("cannot reach Stripe"));
}

// ---------------------------------------------------------------- bad input and the rest

#[tokio::test]
async fn a_malformed_object_fails_permanently_and_writes_nothing() {
    for env in [Env::with_api().await, Env::payload_only().await] {
        let f = fixture("customer.created").customer("cus_Bad").set("email", 42);
        let row = env.failed(&f).await;
        assert_eq!(row.attempts, 1);
        let error = row.last_error.unwrap();
        assert!(
            error.contains("the customer.created object in evt_") && error.contains("not as expected"),
            "{error}"
        );
        assert_eq!(env.app.store.customer("cus_Bad").await.unwrap(), None);
    }
}

#[tokio::test]
async fn other_event_types_are_skipped_without_calling_stripe() {
    let env = Env::with_api().await;
    let body = support::event("evt_other_1", "product.created", "prod_1", T);
    let id = env.app.deliver_ok(&body).await;
    let row = env.app.wait_for(&id, "succeeded", WAIT).await;
    assert_eq!(result(&row), "skipped: no handler for product.created");
    assert!(env.fake().requests().is_empty());
}

#[tokio::test]
async fn there_is_a_fixture_for_every_handled_type_and_a_handler_for_every_fixture() {
    let app = TestApp::spawn().await;
    let processor = deferral::handlers::Processor::from_config(&Config::defaults(), app.store.clone());
    assert_eq!(processor.event_types(), KNOWN_TYPES);
}
