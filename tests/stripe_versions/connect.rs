//! Connect: every fetch for a connected account's event carries `Stripe-Account` and the
//! configured `Stripe-Version`, and the account filters executions in the API and the console.

use serde_json::Value;

use super::stripe_env::{Env, fixture};
use super::{NEWEST, assert_one_try, failed_try};

#[tokio::test]
async fn every_fetch_for_a_connected_account_carries_its_account_and_the_version() {
    // Not the default version, so that every request is seen to send the configured one.
    const CONFIGURED: &str = "2025-03-31.basil";
    let env = Env::with_api_and(|c| c.stripe_api_version = CONFIGURED.into()).await;
    let account = "acct_1Connected";
    let events = failed_try("ch_C", "cus_C", NEWEST).map(|f| f.account(account));
    for f in &events {
        env.fake().put_fixture(f);
    }
    env.fake()
        .put(fixture("charge.failed").object_id("ch_C").customer("cus_C").canonical());
    // A try that made no charge (the card's authentication failed): Stripe lists no failed
    // charge for its payment intent, so the payment intent itself is fetched for the reason.
    let uncharged = fixture("invoice.payment_failed").object_id("in_N").customer("cus_N");
    env.fake().put(
        uncharged
            .related("payment_intent.payment_failed")
            .unwrap()
            .object_id("pi_N")
            .set("last_payment_error.charge", Value::Null)
            .set("last_payment_error.code", "payment_intent_authentication_failure")
            .set("last_payment_error.decline_code", Value::Null)
            .set("latest_charge", Value::Null)
            .canonical(),
    );
    let uncharged = uncharged.set("charge", Value::Null).set("payment_intent", "pi_N");
    let others = [
        fixture("charge.dispute.created").set("charge", "ch_C"),
        fixture("customer.subscription.updated").object_id("sub_C"),
        uncharged,
    ]
    .map(|f| f.api_version(NEWEST).account(account));
    for f in events.iter().chain(&others) {
        let row = env.process(f).await;
        assert_eq!(row.account.as_deref(), Some(account));
        let (_, view) = env.app.api(&format!("/api/v1/executions/{}", row.id)).await;
        assert_eq!(view["account"], account);
    }
    let seen = env.fake().requests();
    for path in [
        "/v1/events/",
        "/v1/invoice_payments?invoice=in_C",
        "/v1/invoice_payments?payment%5Btype%5D=payment_intent&payment%5Bpayment_intent%5D=pi_C",
        "/v1/charges?payment_intent=pi_C&created%5Blte%5D=",
        "/v1/charges/ch_C",
        "/v1/subscriptions/sub_C",
        "/v1/charges?payment_intent=pi_N&created%5Blte%5D=",
        "/v1/payment_intents/pi_N",
    ] {
        assert!(
            seen.iter().any(|s| s.path.starts_with(path)),
            "no request for {path}: {seen:?}"
        );
    }
    for s in &seen {
        assert_eq!(s.account.as_deref(), Some(account), "{s:?}");
        assert_eq!(s.version.as_deref(), Some(CONFIGURED), "{s:?}");
    }
    assert_one_try(&env, "ch_C", "cus_C").await;
    let uncharged = env
        .app
        .store
        .payment_failure("pi_N")
        .await
        .unwrap()
        .expect("the uncharged try's row");
    assert_eq!(
        (uncharged.reason.as_str(), uncharged.invoice.as_deref()),
        ("authentication_required", Some("in_N"))
    );
}

#[tokio::test]
async fn the_account_filter_works_in_the_api_and_the_console() {
    let env = Env::payload_only().await;
    let app = &env.app;
    let mut ids = Vec::new();
    for account in [Some("acct_1A"), Some("acct_1A"), Some("acct_1B"), None] {
        let f = fixture("customer.created");
        let f = match account {
            Some(a) => f.account(a),
            None => f,
        };
        ids.push((env.process(&f).await.id, f.event_id().to_string(), account));
    }
    let (status, page) = app.api("/api/v1/executions?account=acct_1A").await;
    assert_eq!(status, 200, "{page}");
    let listed: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![ids[1].0.as_str(), ids[0].0.as_str()]);
    for bad in ["cus_1", "acct_", "acct_1%27%20OR%201%3D1"] {
        let (status, body) = app.api(&format!("/api/v1/executions?account={bad}")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_filter")),
            "{bad}: {body}"
        );
    }

    let session = app.log_in().await;
    let (status, html) = app.page("/?account=acct_1B", &session).await;
    assert_eq!(status, 200);
    assert!(html.contains(&ids[2].1), "the account's execution is listed");
    for (_, event_id, _) in [&ids[0], &ids[1], &ids[3]] {
        assert!(!html.contains(event_id.as_str()), "{event_id} is not acct_1B's");
    }
    assert!(html.contains(r#"value="acct_1B""#), "the filter form keeps the account");
    let (_, detail) = app.page(&format!("/executions/{}", ids[0].0), &session).await;
    assert!(detail.contains(r#"<dd class="account">acct_1A</dd>"#), "{detail}");
    let (status, _) = app.page("/?account=nope", &session).await;
    assert_eq!(status, 200, "a bad filter is an error shown on the page, not a failure");
}
