//! Both generations of Stripe's payloads (before and after `2025-03-31.basil`), with and
//! without a key, through the real webhook endpoint and the fake Stripe API; the configured
//! `STRIPE_API_VERSION`; Connect accounts on executions, their fetches and their filter.

#[path = "support/fake_stripe.rs"]
mod fake_stripe;
#[path = "support/stripe_env.rs"]
mod stripe_env;
mod support;

use deferral::fixtures::{Fixture, PRE_BASIL};
use deferral::handlers::Processor;
use deferral::store::records::{Notification, PaymentFailure};
use deferral::stripe::API_VERSION as NEWEST;
use serde_json::Value;
use stripe_env::{Env, T, fixture, result};

/// Each scenario runs in both generations, reading from the fake API and from the payload alone.
macro_rules! every_generation {
    ($($scenario:ident),*) => {$(
        mod $scenario {
            use super::*;

            #[tokio::test]
            async fn pre_basil_from_the_api() {
                super::$scenario(Env::with_api().await, PRE_BASIL).await;
            }

            #[tokio::test]
            async fn pre_basil_from_the_payload() {
                super::$scenario(Env::payload_only().await, PRE_BASIL).await;
            }

            #[tokio::test]
            async fn newest_from_the_api() {
                super::$scenario(Env::with_api().await, NEWEST).await;
            }

            #[tokio::test]
            async fn newest_from_the_payload() {
                super::$scenario(Env::payload_only().await, NEWEST).await;
            }
        }
    )*};
}

every_generation!(customers, subscriptions, notifications, disputes, payment_failures);

/// Every type a built-in handler registers (their `TYPES`), so a new one is covered as soon as
/// it is registered: one event of each, in the pre-basil and in the newest shape, into two
/// databases, gives the same records. With a key, Stripe holds the objects of the event's
/// world (the try's charge, payment intent and invoice) as it would.
async fn every_type_in_both_generations(old: Env, new: Env) {
    let with_api = old.fake.is_some();
    let mut processor = Processor::new(old.app.store.clone(), None);
    let types: Vec<String> = processor
        .register_builtin()
        .event_types()
        .into_iter()
        .map(String::from)
        .collect();
    assert!(types.len() >= 20, "{types:?}");
    let mut before = records(&old, with_api).await;
    for ty in &types {
        let event = fixture(ty).created(T);
        for (env, version) in [(&old, PRE_BASIL), (&new, NEWEST)] {
            let event = event.clone().api_version(version);
            if let Some(fake) = &env.fake {
                for neighbour in [
                    "charge.failed",
                    "payment_intent.payment_failed",
                    "invoice.payment_failed",
                ] {
                    fake.put(event.related(neighbour).unwrap().canonical());
                }
            }
            env.process(&event).await;
        }
        let (in_old, in_new) = (records(&old, with_api).await, records(&new, with_api).await);
        assert_eq!(in_old, in_new, "{ty}: {PRE_BASIL} and {NEWEST} left different records");
        assert_ne!(in_old, before, "{ty}: no record written");
        before = in_old;
    }
}

/// Every record as the REST API lists it, without the times it was written. Without a key a
/// basil payment payload cannot name its invoice, payment intent or charge (the README: one
/// row per failed try needs `STRIPE_SECRET_KEY`), so `links: false` leaves those out.
async fn records(env: &Env, links: bool) -> Value {
    let mut all = serde_json::Map::new();
    for kind in [
        "customers",
        "subscriptions",
        "payment-failures",
        "notifications",
        "disputes",
    ] {
        let (status, page) = env.app.api(&format!("/api/v1/records/{kind}?limit=500")).await;
        assert_eq!((status, &page["next_cursor"]), (200, &Value::Null), "{page}");
        let mut rows = page["data"].as_array().unwrap().clone();
        for row in rows.iter_mut().filter_map(Value::as_object_mut) {
            let unlinked: &[&str] = if links || kind != "payment-failures" {
                &[]
            } else {
                &["id", "invoice", "payment_intent", "charge"]
            };
            for field in ["updated_at", "created_at", "sent_at"].iter().chain(unlinked) {
                row.remove(*field);
            }
            if kind == "notifications" {
                row.remove("id");
            }
        }
        rows.sort_by_key(Value::to_string);
        all.insert(kind.into(), rows.into());
    }
    Value::Object(all)
}

#[tokio::test]
async fn every_handled_type_keeps_the_same_records_in_both_generations_with_a_key() {
    every_type_in_both_generations(Env::with_api().await, Env::with_api().await).await;
}

#[tokio::test]
async fn every_handled_type_keeps_the_same_records_in_both_generations_from_the_payload() {
    every_type_in_both_generations(Env::payload_only().await, Env::payload_only().await).await;
}

fn in_version(ty: &str, version: &str) -> Fixture {
    Fixture::in_version(ty, version).expect("a known type")
}

async fn customers(env: Env, version: &str) {
    let created = in_version("customer.created", version).customer("cus_V").created(T);
    assert_eq!(result(&env.process(&created).await), "customer cus_V upserted");
    let c = env.app.store.customer("cus_V").await.unwrap().expect("customer row");
    assert_eq!(c.email.as_deref(), Some("jenny.rosen@example.com"));
    env.process(&in_version("customer.deleted", version).customer("cus_V").created(T + 1))
        .await;
    assert!(env.app.store.customer("cus_V").await.unwrap().unwrap().deleted);
}

async fn subscriptions(env: Env, version: &str) {
    let f = in_version("customer.subscription.created", version)
        .object_id("sub_V")
        .customer("cus_V")
        .created(T);
    let end = f.canonical()["current_period_end"].as_i64().unwrap();
    if version == NEWEST {
        // The newest shape has the period on the items only.
        assert!(f.object().get("current_period_end").is_none());
        assert_eq!(f.object()["items"]["data"][0]["current_period_end"], end);
    }
    assert_eq!(result(&env.process(&f).await), "subscription sub_V upserted (active)");
    let s = env
        .app
        .store
        .subscription("sub_V")
        .await
        .unwrap()
        .expect("subscription row");
    assert_eq!(s.current_period_end, Some(end));
    assert_eq!((s.customer.as_str(), s.quantity), ("cus_V", Some(1)));
    assert_eq!(s.price.as_deref(), Some("price_1PqXd0LkdIwHu7ixPro001"));
}

async fn notifications(env: Env, version: &str) {
    let store = &env.app.store;
    for (ty, kind) in [
        ("invoice.upcoming", "upcoming_charge"),
        ("invoice.finalized", "invoice_email"),
        ("invoice.paid", "invoice_email"),
        ("customer.subscription.trial_will_end", "trial_ending"),
    ] {
        let f = in_version(ty, version).customer("cus_V");
        env.process(&f).await;
        let ns = store.notifications_for(f.event_id()).await.unwrap();
        assert_eq!(ns.len(), 1, "{ty}: {ns:?}");
        assert_eq!((ns[0].kind.as_str(), ns[0].customer.as_deref()), (kind, Some("cus_V")));
        if ty.starts_with("invoice.") {
            assert_eq!(ns[0].amount, Some(2900), "{ty}");
            assert_eq!(ns[0].url.as_deref(), f.object()["hosted_invoice_url"].as_str(), "{ty}");
        } else {
            assert_eq!(ns[0].due_at, f.object()["trial_end"].as_i64());
        }
    }
}

async fn disputes(env: Env, version: &str) {
    if let Some(fake) = &env.fake {
        fake.put(fixture("charge.failed").object_id("ch_D").customer("cus_D").canonical());
    }
    let f = in_version("charge.dispute.created", version)
        .object_id("dp_V")
        .set("charge", "ch_D");
    env.process(&f).await;
    let d = env.app.store.dispute("dp_V").await.unwrap().expect("dispute row");
    assert!(d.hold);
    let with_api = env.fake.is_some();
    assert_eq!(d.customer.as_deref(), with_api.then_some("cus_D"));
}

/// The three events of one failed try in `version`: payment intent, charge, invoice. The two
/// reasons differ, as Stripe lets them (both are decline codes of its list): the charge's
/// `outcome.reason` is `insufficient_funds`, its `failure_code` `card_declined`, while the
/// payment intent's `last_payment_error` says `generic_decline` (`code` `card_declined`), so
/// a row's reason tells which event it came from.
fn failed_try(ch: &str, customer: &str, version: &str) -> [Fixture; 3] {
    let tail = &ch[3..];
    let (invoice, intent) = (format!("in_{tail}"), format!("pi_{tail}"));
    let shaped = |f: Fixture| f.customer(customer).api_version(version);
    [
        shaped(
            fixture("payment_intent.payment_failed")
                .object_id(&intent)
                .set("invoice", invoice.as_str())
                .set("last_payment_error.charge", ch)
                .set("last_payment_error.code", "card_declined")
                .set("last_payment_error.decline_code", "generic_decline")
                .created(T),
        ),
        shaped(
            fixture("charge.failed")
                .object_id(ch)
                .set("invoice", invoice.as_str())
                .set("payment_intent", intent.as_str())
                .set("outcome.reason", "insufficient_funds")
                .set("failure_code", "card_declined")
                .set("created", T)
                .created(T),
        ),
        shaped(
            fixture("invoice.payment_failed")
                .object_id(&invoice)
                .set("charge", ch)
                .set("payment_intent", intent.as_str())
                .created(T + 1),
        ),
    ]
}

/// Every order three events can arrive in.
const EVERY_ORDER: [[usize; 3]; 6] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];

/// The payment failed notifications queued for a customer.
async fn told(env: &Env, customer: &str) -> Vec<Notification> {
    let pending = env.app.store.pending_notifications(1000).await.unwrap();
    pending
        .into_iter()
        .filter(|n| n.kind == "payment_failed" && n.customer.as_deref() == Some(customer))
        .collect()
}

async fn failures(env: &Env, customer: &str) -> Vec<PaymentFailure> {
    env.app.store.customer_payment_failures(customer).await.unwrap()
}

/// One row keyed by the charge, the charge's reason (not the payment intent's
/// `generic_decline`), every link, one notification telling the charge's reason.
async fn assert_one_try(env: &Env, ch: &str, customer: &str) {
    let rows = failures(env, customer).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    let tail = &ch[3..];
    assert_eq!((row.id.as_str(), row.reason.as_str()), (ch, "insufficient_funds"));
    assert_eq!(
        row.code.as_deref(),
        Some("insufficient_funds"),
        "the charge's outcome.reason"
    );
    assert_eq!(row.invoice, Some(format!("in_{tail}")));
    assert_eq!(row.payment_intent, Some(format!("pi_{tail}")));
    assert_eq!((row.attempt_count, row.failed_at), (Some(1), T));
    let told = told(env, customer).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].reason.as_deref(), Some("insufficient_funds"));
}

/// A basil try without a key, as the README says: the payment intent's and the charge's events
/// share the charge's row, with the charge's reason; the invoice's names neither and gets a row
/// of its own (keyed by its event id, reason `other`); the customer is told once, from the
/// invoice's event; each execution's result says what could not be linked. `results` are the
/// results of the payment intent's, the charge's and the invoice's events, in that order.
async fn assert_unlinked_basil_try(env: &Env, ch: &str, customer: &str, invoice_event: &str, results: &[String]) {
    let tail = &ch[3..];
    let (pi, inv) = (format!("pi_{tail}"), format!("in_{tail}"));
    let rows = failures(env, customer).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let charge_row = rows.iter().find(|r| r.id == ch).expect("the charge's row");
    assert_eq!(
        (charge_row.reason.as_str(), charge_row.code.as_deref()),
        ("insufficient_funds", Some("insufficient_funds"))
    );
    assert_eq!(charge_row.payment_intent.as_deref(), Some(pi.as_str()));
    assert_eq!(charge_row.invoice, None);
    let invoice_row = rows.iter().find(|r| r.id == invoice_event).expect("the invoice's row");
    assert_eq!(
        (invoice_row.reason.as_str(), invoice_row.invoice.as_deref()),
        ("other", Some(inv.as_str()))
    );
    for (result, says) in results.iter().zip([
        format!("not linked: payment intent {pi} names no invoice"),
        format!("not linked: charge {ch} names no invoice"),
        format!("not linked: invoice {inv} names no charge"),
    ]) {
        assert!(result.contains(&says), "{result}");
    }
    assert!(results[0].contains("not notified"), "{}", results[0]);
    let told = told(env, customer).await;
    assert_eq!(told.len(), 1, "{told:?}");
    let from_invoice = env.app.store.notifications_for(invoice_event).await.unwrap();
    assert_eq!(from_invoice.len(), 1, "told from the invoice's event: {told:?}");
    assert_eq!(from_invoice[0].reason.as_deref(), Some("other"));
}

async fn payment_failures(env: Env, version: &str) {
    let events = failed_try("ch_V", "cus_V", version);
    if let Some(fake) = &env.fake {
        // Stripe has every object of the try before the first event is delivered.
        events.iter().for_each(|f| fake.put_fixture(f));
    }
    let mut results = Vec::new();
    for f in &events {
        results.push(result(&env.process(f).await).to_string());
    }
    if version == PRE_BASIL || env.fake.is_some() {
        return assert_one_try(&env, "ch_V", "cus_V").await;
    }
    assert_unlinked_basil_try(&env, "ch_V", "cus_V", events[2].event_id(), &results).await;
}

/// Delivers each of the six orders' try (`ch_Order{n}`, customer `cus_Order{n}`) in its order,
/// and returns the events and their results, in the events' order (payment intent, charge,
/// invoice).
async fn in_every_order(env: &Env) -> Vec<(String, String, [Fixture; 3], Vec<String>)> {
    let mut tries = Vec::new();
    for (n, order) in EVERY_ORDER.iter().enumerate() {
        let (ch, customer) = (format!("ch_Order{n}"), format!("cus_Order{n}"));
        let events = failed_try(&ch, &customer, "2025-03-31.basil");
        if let Some(fake) = &env.fake {
            // Stripe has every object of the try before the first event is delivered.
            events.iter().for_each(|f| fake.put_fixture(f));
        }
        let mut results = vec![String::new(); 3];
        for &i in order {
            results[i] = result(&env.process(&events[i]).await).to_string();
        }
        tries.push((ch, customer, events, results));
    }
    tries
}

#[tokio::test]
async fn a_basil_failed_payment_in_every_arrival_order_is_one_row_with_a_key() {
    let env = Env::with_api().await;
    for (ch, customer, _, _) in in_every_order(&env).await {
        assert_one_try(&env, &ch, &customer).await;
    }
}

#[tokio::test]
async fn a_basil_failed_payment_in_every_arrival_order_without_a_key_is_what_the_readme_says() {
    let env = Env::payload_only().await;
    for (ch, customer, events, results) in in_every_order(&env).await {
        assert_unlinked_basil_try(&env, &ch, &customer, events[2].event_id(), &results).await;
    }
}

#[tokio::test]
async fn objects_come_back_in_the_configured_version_and_the_result_says_so() {
    let env = Env::with_api_and(|c| c.stripe_api_version = PRE_BASIL.into()).await;
    let f = in_version("customer.subscription.updated", NEWEST)
        .object_id("sub_O")
        .customer("cus_O");
    let row = env.process(&f).await;
    let all = row.result.clone().unwrap();
    assert_eq!(
        all,
        format!(
            "subscription sub_O upserted (past_due) [event in API version {NEWEST}; objects fetched in {PRE_BASIL}]"
        )
    );
    let seen = env.fake().requests();
    assert!(seen.iter().all(|s| s.version.as_deref() == Some(PRE_BASIL)), "{seen:?}");
    // Fetched in the old shape, the period is the subscription's own.
    let s = env.app.store.subscription("sub_O").await.unwrap().unwrap();
    assert_eq!(s.current_period_end, f.canonical()["current_period_end"].as_i64());

    // A basil try read with objects of the old generation still makes one row.
    let events = failed_try("ch_O", "cus_O", NEWEST);
    for f in &events {
        env.fake().put_fixture(f);
    }
    for f in events.iter().rev() {
        env.process(f).await;
    }
    assert_one_try(&env, "ch_O", "cus_O").await;
}

#[path = "stripe_versions/connect.rs"]
mod connect;
