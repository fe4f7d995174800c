//! One `payment_failures` row per failed try, right whatever the order or the delay of its
//! events: the decline reason does not depend on which event came first, and a basil invoice
//! event processed after its payment intent's next try still lands on its own try.

#[path = "support/fake_stripe.rs"]
mod fake_stripe;
#[path = "support/stripe_env.rs"]
mod stripe_env;
mod support;

use deferral::fixtures::Fixture;
use deferral::store::records::PaymentFailure;
use deferral::stripe::API_VERSION as NEWEST;
use stripe_env::{Env, T, fixture};

/// The payment intent's, the charge's and the invoice's events of try `n` (1, 2 …) of invoice
/// `in_{tag}`, paid by `pi_{tag}`: its charge `ch_{tag}{n}` is made at `at` and declined with
/// `outcome` (the charge's `outcome.reason`, `failure_code` card_declined) while the payment
/// intent's `last_payment_error` says `decline_code`.
fn one_try(tag: &str, n: i64, at: i64, outcome: &str, decline_code: &str) -> [Fixture; 3] {
    let (customer, invoice, intent, charge) = (
        format!("cus_{tag}"),
        format!("in_{tag}"),
        format!("pi_{tag}"),
        format!("ch_{tag}{n}"),
    );
    [
        fixture("payment_intent.payment_failed")
            .object_id(&intent)
            .set("invoice", invoice.as_str())
            .set("last_payment_error.charge", charge.as_str())
            .set("last_payment_error.code", "card_declined")
            .set("last_payment_error.decline_code", decline_code)
            .set("latest_charge", charge.as_str()),
        fixture("charge.failed")
            .object_id(&charge)
            .set("invoice", invoice.as_str())
            .set("payment_intent", intent.as_str())
            .set("outcome.reason", outcome)
            .set("failure_code", "card_declined")
            .set("created", at),
        fixture("invoice.payment_failed")
            .object_id(&invoice)
            .set("charge", charge.as_str())
            .set("payment_intent", intent.as_str())
            .set("attempt_count", n),
    ]
    .map(|f| f.customer(&customer).created(at))
}

async fn rows(env: &Env, customer: &str) -> Vec<PaymentFailure> {
    env.app.store.customer_payment_failures(customer).await.unwrap()
}

/// The charge says `do_not_honor` (its `outcome.reason`, what Stripe's guide to declines reads),
/// the payment intent's error `generic_decline`: the charge's reason, whichever event is first.
#[tokio::test]
async fn the_charges_outcome_decides_the_reason_in_either_arrival_order() {
    let env = Env::payload_only().await;
    for (tag, charge_first) in [("Pc", false), ("Cp", true)] {
        let [intent, charge, invoice] = one_try(tag, 1, T, "do_not_honor", "generic_decline");
        let order = if charge_first {
            [&charge, &intent]
        } else {
            [&intent, &charge]
        };
        for f in order.into_iter().chain([&invoice]) {
            env.process(f).await;
        }
        let rows = rows(&env, &format!("cus_{tag}")).await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        let row = &rows[0];
        assert_eq!(
            (row.reason.as_str(), row.code.as_deref()),
            ("bank_restriction", Some("do_not_honor")),
            "charge first: {charge_first}"
        );
        // The invoice's notification tells the merged reason.
        let told = env.app.store.notifications_for(invoice.event_id()).await.unwrap();
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].reason.as_deref(), Some("bank_restriction"));
    }
}

/// A basil invoice event names no charge, and its payment intent's `last_payment_error` has
/// moved on to the second try by the time the first try's invoice event is processed: the
/// first try is found among the payment intent's charges made by the event's `created`.
#[tokio::test]
async fn a_late_basil_invoice_event_lands_on_its_own_try() {
    let env = Env::with_api().await;
    let first = one_try("L", 1, T, "insufficient_funds", "insufficient_funds").map(|f| f.api_version(NEWEST));
    let second = one_try("L", 2, T + 86_400, "expired_card", "expired_card").map(|f| f.api_version(NEWEST));
    // Both tries happen before the first invoice event is processed: Stripe's payment intent
    // and invoice are in the second try's state, and it has both charges.
    for f in first[..2].iter().chain(&second) {
        env.process(f).await;
    }
    env.process(&first[2]).await;

    let rows = rows(&env, "cus_L").await;
    let seen: Vec<_> = rows
        .iter()
        .map(|r| (r.id.as_str(), r.reason.as_str(), r.attempt_count, r.invoice.as_deref()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("ch_L1", "insufficient_funds", Some(1), Some("in_L")),
            ("ch_L2", "expired_card", Some(2), Some("in_L")),
        ]
    );
    for (n, (event, reason)) in [(&first[2], "insufficient_funds"), (&second[2], "expired_card")]
        .into_iter()
        .enumerate()
    {
        let told = env.app.store.notifications_for(event.event_id()).await.unwrap();
        assert_eq!(told.len(), 1, "try {}: {told:?}", n + 1);
        assert_eq!(told[0].reason.as_deref(), Some(reason), "try {}", n + 1);
    }
    let asked = format!("/v1/charges?payment_intent=pi_L&created%5Blte%5D={}", T);
    let seen = env.fake().requests();
    assert!(seen.iter().any(|s| s.path.starts_with(&asked)), "{seen:?}");
}
