//! Stripe event processing end to end: a signed webhook in, the record in its table out.
//!
//! Every handler is driven through the same scenario twice: reading events from a fake
//! Stripe API (`source: api`) and from the verified payload alone (`source: payload`).
//! Each scenario applies events, re-runs one (idempotence) and delivers an older event
//! after a newer one (order). The Stripe client's failures are checked against the fake's
//! injected errors.

#[path = "support/fake_stripe.rs"]
mod fake_stripe;
#[path = "support/stripe_env.rs"]
mod stripe_env;
mod support;

use std::time::Duration;

use deferral::config::Config;
use deferral::fixtures::{Fixture, KNOWN_TYPES};
use deferral::store::records::Notification;
use fake_stripe::{Fault, KEY};
use stripe_env::{Env, T, WAIT, fixture, result};
use support::TestApp;

/// A charge as the API serves it, for handlers that fetch one.
fn charge(id: &str, customer: &str, decline: &str) -> serde_json::Value {
    fixture("charge.failed")
        .object_id(id)
        .customer(customer)
        .set("outcome.reason", decline)
        .set("failure_code", "card_declined")
        .object()
        .clone()
}

/// Each scenario runs twice: reading events from the fake API, and from the payload alone.
macro_rules! in_both_modes {
    ($($scenario:ident),*) => {$(
        mod $scenario {
            #[tokio::test]
            async fn from_the_api() {
                super::$scenario(super::Env::with_api().await).await;
            }

            #[tokio::test]
            async fn from_the_payload() {
                super::$scenario(super::Env::payload_only().await).await;
            }
        }
    )*};
}

in_both_modes!(customers, subscriptions, payment_failures, notifications, disputes);

// ---------------------------------------------------------------- customers

async fn customers(env: Env) {
    let store = &env.app.store;
    let created = env
        .process(&fixture("customer.created").customer("cus_A").created(T))
        .await;
    assert_eq!(result(&created), "customer cus_A upserted");
    let first = store.customer("cus_A").await.unwrap().expect("customer row");
    assert_eq!(first.email.as_deref(), Some("jenny.rosen@example.com"));
    assert!(!first.delinquent && !first.deleted && !first.on_hold);
    assert_eq!(first.stripe_updated_at, T);

    // Twice: the same event again leaves the same row.
    let again = env.rerun(&created).await;
    assert_eq!(result(&again), "customer cus_A upserted");
    assert_eq!(store.customer("cus_A").await.unwrap().unwrap(), first);

    // Newer, then older: the older one changes nothing and says so.
    let newer = fixture("customer.updated")
        .customer("cus_A")
        .created(T + 10)
        .set("email", "new@example.com");
    env.process(&newer).await;
    let older = fixture("customer.updated")
        .customer("cus_A")
        .created(T + 5)
        .set("email", "old@example.com");
    let stale = env.process(&older).await;
    assert!(
        result(&stale).starts_with("stale, skipped: customer cus_A already reflects"),
        "{stale:?}"
    );
    let now = store.customer("cus_A").await.unwrap().unwrap();
    assert_eq!(now.email.as_deref(), Some("new@example.com"));
    assert!(now.delinquent);
    assert_eq!(now.last_event_id.as_deref(), Some(newer.event_id()));

    // Deleted, then a late update: still deleted.
    let deleted = env
        .process(&fixture("customer.deleted").customer("cus_A").created(T + 20))
        .await;
    assert_eq!(result(&deleted), "customer cus_A marked deleted");
    env.process(&fixture("customer.updated").customer("cus_A").created(T + 15))
        .await;
    assert!(store.customer("cus_A").await.unwrap().unwrap().deleted);

    // Deleted before it was ever created (delivered out of order): the create is stale.
    env.process(&fixture("customer.deleted").customer("cus_B").created(T + 20))
        .await;
    let late = env
        .process(&fixture("customer.created").customer("cus_B").created(T))
        .await;
    assert!(result(&late).starts_with("stale, skipped"), "{late:?}");
    assert!(store.customer("cus_B").await.unwrap().unwrap().deleted);
}

// ---------------------------------------------------------------- subscriptions

async fn subscriptions(env: Env) {
    let store = &env.app.store;
    let sub = |ty: &str, at: i64| fixture(ty).object_id("sub_A").customer("cus_A").created(at);
    let created = env.process(&sub("customer.subscription.created", T)).await;
    assert_eq!(result(&created), "subscription sub_A upserted (active)");
    let first = store.subscription("sub_A").await.unwrap().expect("subscription row");
    assert_eq!(first.customer, "cus_A");
    assert_eq!(first.status, "active");
    assert_eq!(first.price.as_deref(), Some("price_1PqXd0LkdIwHu7ixPro001"));
    assert_eq!(first.quantity, Some(1));
    assert!(first.current_period_end.is_some_and(|end| end > T));

    assert_eq!(
        result(&env.rerun(&created).await),
        "subscription sub_A upserted (active)"
    );
    assert_eq!(store.subscription("sub_A").await.unwrap().unwrap(), first);

    env.process(&sub("customer.subscription.updated", T + 10).set("cancel_at_period_end", true))
        .await;
    let older = sub("customer.subscription.updated", T + 5).set("status", "active");
    assert!(result(&env.process(&older).await).starts_with("stale, skipped: subscription sub_A"));
    let now = store.subscription("sub_A").await.unwrap().unwrap();
    assert_eq!(now.status, "past_due");
    assert!(now.cancel_at_period_end);

    for (ty, status, at) in [
        ("customer.subscription.paused", "paused", T + 20),
        ("customer.subscription.resumed", "active", T + 30),
        ("customer.subscription.deleted", "canceled", T + 40),
    ] {
        env.process(&sub(ty, at)).await;
        assert_eq!(
            store.subscription("sub_A").await.unwrap().unwrap().status,
            status,
            "{ty}"
        );
    }
}

#[tokio::test]
async fn with_a_key_the_subscription_itself_is_read_not_the_snapshot() {
    let env = Env::with_api().await;
    let event = fixture("customer.subscription.updated")
        .object_id("sub_C")
        .customer("cus_C")
        .created(T);
    env.fake().put_fixture(&event);
    // Since the event, the subscription was cancelled: the current object says so.
    env.fake()
        .put(&event.clone().set("status", "canceled").object().clone());
    let id = env.app.deliver_ok(&event.to_json()).await;
    let row = env.app.wait_for(&id, "succeeded", WAIT).await;
    assert_eq!(result(&row), "subscription sub_C upserted (canceled)");
    assert_eq!(
        env.app.store.subscription("sub_C").await.unwrap().unwrap().status,
        "canceled"
    );
    assert_eq!(env.fake().requests_for("sub_C"), 1);
}

// ---------------------------------------------------------------- payment failures

/// The three events of one failed try, about charge `ch`.
fn failed_try(ch: &str, customer: &str) -> [Fixture; 3] {
    let invoice = format!("in_{}", &ch[3..]);
    let intent = format!("pi_{}", &ch[3..]);
    [
        fixture("payment_intent.payment_failed")
            .object_id(&intent)
            .customer(customer)
            .set("invoice", invoice.as_str())
            .set("last_payment_error.charge", ch)
            .set("last_payment_error.decline_code", "expired_card")
            .set("last_payment_error.code", "expired_card")
            .created(T),
        fixture("charge.failed")
            .object_id(ch)
            .customer(customer)
            .set("invoice", invoice.as_str())
            .set("payment_intent", intent.as_str())
            .set("outcome.reason", "expired_card")
            .set("failure_code", "expired_card")
            .created(T),
        fixture("invoice.payment_failed")
            .object_id(&invoice)
            .customer(customer)
            .set("charge", ch)
            .set("payment_intent", intent.as_str())
            .created(T + 1),
    ]
}

async fn payment_failures(env: Env) {
    let store = &env.app.store;
    if let Some(fake) = &env.fake {
        fake.put(&charge("ch_A", "cus_A", "expired_card"));
    }
    let [intent, charge_failed, invoice] = failed_try("ch_A", "cus_A");

    // The invoice first: with a key the charge says why; without, only the later events do.
    let row = env.process(&invoice).await;
    let reason = if env.fake.is_some() { "expired_card" } else { "other" };
    assert_eq!(
        result(&row),
        format!("payment failure ch_A recorded ({reason}); notification payment_failed queued for cus_A")
    );
    let notified = store.notifications_for(invoice.event_id()).await.unwrap();
    assert_eq!(notified.len(), 1);
    assert_eq!(notified[0].kind, "payment_failed");
    assert_eq!(notified[0].email.as_deref(), Some("jenny.rosen@example.com"));
    assert_eq!(notified[0].reason.as_deref(), Some(reason));
    assert!(
        notified[0]
            .url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://invoice.stripe.com/"))
    );
    assert_eq!(notified[0].status, "pending");

    // Twice: no second notification, the same row.
    let before = store.payment_failure("ch_A").await.unwrap().unwrap();
    let again = env.rerun(&row).await;
    let already = format!("notification payment_failed already queued for {}", invoice.event_id());
    assert!(result(&again).ends_with(&already), "{again:?}");
    assert_eq!(store.notifications_for(invoice.event_id()).await.unwrap().len(), 1);
    assert_eq!(store.payment_failure("ch_A").await.unwrap().unwrap(), before);

    // The older events of the same try arrive after it and complete the one row.
    env.process(&intent).await;
    env.process(&charge_failed).await;
    let a = store.payment_failure("ch_A").await.unwrap().unwrap();
    assert_eq!(
        (a.reason.as_str(), a.code.as_deref()),
        ("expired_card", Some("expired_card"))
    );
    assert_eq!(a.invoice.as_deref(), Some(invoice.object()["id"].as_str().unwrap()));
    assert_eq!(
        a.payment_intent.as_deref(),
        Some(intent.object()["id"].as_str().unwrap())
    );
    assert_eq!(
        (a.amount, a.currency.as_deref(), a.attempt_count),
        (Some(2900), Some("usd"), Some(1))
    );
    assert!(a.next_payment_attempt.is_some());
    assert_eq!(a.failed_at, T);
    // The payment intent's event belongs to an invoice: the invoice's notification is the one.
    assert!(store.notifications_for(intent.event_id()).await.unwrap().is_empty());

    // In the opposite order, the same row.
    if let Some(fake) = &env.fake {
        fake.put(&charge("ch_B", "cus_A", "expired_card"));
    }
    for f in failed_try("ch_B", "cus_A").iter().rev() {
        env.process(f).await;
    }
    let b = store.payment_failure("ch_B").await.unwrap().unwrap();
    let strip = |f: deferral::store::records::PaymentFailure| {
        (
            f.customer,
            f.amount,
            f.reason,
            f.code,
            f.message,
            f.attempt_count,
            f.failed_at,
        )
    };
    assert_eq!(strip(b), strip(a));

    // A payment outside an invoice: the customer hears from the payment intent's event.
    let standalone = fixture("payment_intent.payment_failed")
        .object_id("pi_Solo")
        .customer("cus_A")
        .set("invoice", serde_json::Value::Null)
        .set("last_payment_error.charge", "ch_Solo")
        .set("last_payment_error.decline_code", "do_not_honor");
    let row = env.process(&standalone).await;
    assert_eq!(
        result(&row),
        "payment failure ch_Solo recorded (bank_restriction); notification payment_failed queued for cus_A"
    );
    let n = &store.notifications_for(standalone.event_id()).await.unwrap()[0];
    assert_eq!(n.reason.as_deref(), Some("bank_restriction"));
}

// ---------------------------------------------------------------- notifications

async fn notifications(env: Env) {
    let store = &env.app.store;
    let only = |ns: Vec<Notification>| {
        assert_eq!(ns.len(), 1, "{ns:?}");
        ns.into_iter().next().unwrap()
    };

    let upcoming = fixture("invoice.upcoming").customer("cus_A").created(T);
    let row = env.process(&upcoming).await;
    assert_eq!(result(&row), "notification upcoming_charge queued for cus_A");
    let n = only(store.notifications_for(upcoming.event_id()).await.unwrap());
    assert_eq!((n.amount, n.currency.as_deref()), (Some(2900), Some("usd")));
    assert_eq!(n.due_at, upcoming.object()["next_payment_attempt"].as_i64());
    assert_eq!(n.email.as_deref(), Some("jenny.rosen@example.com"));

    // Twice, as a re-run and as Stripe delivering the same event again: one message.
    assert!(result(&env.rerun(&row).await).starts_with("notification upcoming_charge already queued"));
    let duplicate = env
        .app
        .deliver(&upcoming.to_json())
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(duplicate["duplicate"], true);
    only(store.notifications_for(upcoming.event_id()).await.unwrap());

    // Finalized and paid: one invoice email each, with the hosted invoice.
    let paid = fixture("invoice.paid").customer("cus_A").created(T + 20);
    let finalized = fixture("invoice.finalized").customer("cus_A").created(T + 10);
    env.process(&paid).await; // delivered before the older finalized: both still count
    env.process(&finalized).await;
    for f in [&finalized, &paid] {
        let n = only(store.notifications_for(f.event_id()).await.unwrap());
        assert_eq!(n.kind, "invoice_email");
        assert_eq!(n.url.as_deref(), f.object()["hosted_invoice_url"].as_str());
        assert_eq!(n.amount, Some(2900));
    }

    // The trial's end: the subscription carries no email, the customers table does.
    env.process(
        &fixture("customer.created")
            .customer("cus_T")
            .set("email", "trial@example.com"),
    )
    .await;
    let trial = fixture("customer.subscription.trial_will_end").customer("cus_T");
    env.process(&trial).await;
    let n = only(store.notifications_for(trial.event_id()).await.unwrap());
    assert_eq!(
        (n.kind.as_str(), n.email.as_deref()),
        ("trial_ending", Some("trial@example.com"))
    );
    assert_eq!(n.due_at, trial.object()["trial_end"].as_i64());

    // Applications drain the outbox.
    let pending = store.pending_notifications(100).await.unwrap();
    assert_eq!(pending.len(), 4);
    assert!(store.mark_notification_sent(pending[0].id).await.unwrap());
    assert!(!store.mark_notification_sent(pending[0].id).await.unwrap());
    assert_eq!(store.pending_notifications(100).await.unwrap().len(), 3);
}

// ---------------------------------------------------------------- disputes

async fn disputes(env: Env) {
    let store = &env.app.store;
    if let Some(fake) = &env.fake {
        fake.put(&charge("ch_D", "cus_D", "fraudulent"));
    }
    let dispute = |ty: &str, at: i64| fixture(ty).object_id("dp_A").set("charge", "ch_D").created(at);
    let with_api = env.fake.is_some();

    let created = env.process(&dispute("charge.dispute.created", T)).await;
    let d = store.dispute("dp_A").await.unwrap().expect("dispute row");
    assert!(d.hold);
    assert_eq!(
        (d.amount, d.reason.as_deref(), d.status.as_str()),
        (Some(2900), Some("fraudulent"), "needs_response")
    );
    assert!(d.evidence_due_by.is_some_and(|due| due > T));
    if with_api {
        assert_eq!(
            result(&created),
            "dispute dp_A recorded, on hold; customer cus_D hold recomputed"
        );
        assert_eq!(d.customer.as_deref(), Some("cus_D"));
        assert!(store.customer("cus_D").await.unwrap().unwrap().on_hold);
    } else {
        assert!(
            result(&created).contains("customer unknown without STRIPE_SECRET_KEY"),
            "{created:?}"
        );
        assert_eq!(d.customer, None);
    }
    env.rerun(&created).await;
    assert_eq!(store.dispute("dp_A").await.unwrap().unwrap(), d);

    // Closed, then the older funds and update events arrive late.
    let closed = env.process(&dispute("charge.dispute.closed", T + 20)).await;
    assert!(
        result(&closed).starts_with("dispute dp_A closed (lost), hold released"),
        "{closed:?}"
    );
    let withdrawn = env.process(&dispute("charge.dispute.funds_withdrawn", T + 5)).await;
    assert!(
        result(&withdrawn).starts_with("dispute dp_A recorded: funds withdrawn (its status reflects a newer event)"),
        "{withdrawn:?}"
    );
    let updated = env.process(&dispute("charge.dispute.updated", T + 10)).await;
    assert!(
        result(&updated).starts_with("stale, skipped: dispute dp_A"),
        "{updated:?}"
    );

    let d = store.dispute("dp_A").await.unwrap().unwrap();
    assert_eq!(
        (d.status.as_str(), d.outcome.as_deref(), d.hold),
        ("lost", Some("lost"), false)
    );
    assert!(d.funds_withdrawn && !d.funds_reinstated);
    if with_api {
        assert!(!store.customer("cus_D").await.unwrap().unwrap().on_hold);
    }
}

#[tokio::test]
async fn a_customer_stays_on_hold_while_any_dispute_is_open() {
    let env = Env::with_api().await;
    let store = &env.app.store;
    env.fake().put(&charge("ch_1", "cus_H", "fraudulent"));
    env.fake().put(&charge("ch_2", "cus_H", "fraudulent"));
    env.process(&fixture("customer.created").customer("cus_H").created(T))
        .await;
    env.process(
        &fixture("charge.dispute.created")
            .object_id("dp_1")
            .set("charge", "ch_1")
            .created(T),
    )
    .await;
    env.process(
        &fixture("charge.dispute.created")
            .object_id("dp_2")
            .set("charge", "ch_2")
            .created(T),
    )
    .await;
    env.process(
        &fixture("charge.dispute.closed")
            .object_id("dp_1")
            .set("charge", "ch_1")
            .set("status", "won")
            .created(T + 5),
    )
    .await;
    let c = store.customer("cus_H").await.unwrap().unwrap();
    assert!(c.on_hold, "dp_2 is still open");
    assert_eq!(
        c.email.as_deref(),
        Some("jenny.rosen@example.com"),
        "the hold leaves the customer's fields alone"
    );
    env.process(
        &fixture("charge.dispute.closed")
            .object_id("dp_2")
            .set("charge", "ch_2")
            .created(T + 6),
    )
    .await;
    assert!(!store.customer("cus_H").await.unwrap().unwrap().on_hold);
    assert_eq!(
        store.dispute("dp_1").await.unwrap().unwrap().outcome.as_deref(),
        Some("won")
    );
}

#[path = "stripe_processing/client.rs"]
mod client;
