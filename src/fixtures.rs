//! Realistic Stripe event bodies (API version 2024-06-20) for every event type the built-in
//! handlers know: the one source used by the tests, `deferral trigger` and `deferral demo`.
//!
//! Each fixture invents one small world of related ids (customer, subscription, invoice,
//! payment intent, charge, dispute), so its object points at consistent neighbours; the
//! builder methods change what a test or the demo needs.

use rand::Rng;
use serde_json::{Value, json};

/// The API version the fixtures are shaped after.
pub const API_VERSION: &str = "2024-06-20";

/// Every event type a fixture exists for, sorted: exactly those with a built-in handler.
pub const KNOWN_TYPES: &[&str] = &[
    "charge.dispute.closed",
    "charge.dispute.created",
    "charge.dispute.funds_reinstated",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.updated",
    "charge.failed",
    "customer.created",
    "customer.deleted",
    "customer.subscription.created",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    "customer.subscription.updated",
    "customer.updated",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.upcoming",
    "payment_intent.payment_failed",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{event_type}`; known types: {}", KNOWN_TYPES.join(", "))]
pub struct UnknownEventType {
    pub event_type: String,
}

/// One Stripe event body, built from a type and adjusted with the builder methods.
#[derive(Debug, Clone)]
pub struct Fixture {
    event: Value,
}

/// A Stripe-looking id: the prefix and 14 to 24 letters and digits.
pub fn stripe_id(prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let tail: String = (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}_{tail}")
}

/// The related objects one fixture speaks about.
struct World {
    customer: String,
    subscription: String,
    invoice: String,
    payment_intent: String,
    charge: String,
    dispute: String,
    price: String,
    created: i64,
}

impl World {
    fn new(created: i64) -> World {
        World {
            customer: stripe_id("cus", 14),
            subscription: stripe_id("sub", 24),
            invoice: stripe_id("in", 24),
            payment_intent: stripe_id("pi", 24),
            charge: stripe_id("ch", 24),
            dispute: stripe_id("dp", 24),
            price: "price_1PqXd0LkdIwHu7ixPro001".into(),
            created,
        }
    }
}

impl Fixture {
    /// A fresh event of `event_type`, created now, in test mode.
    pub fn new(event_type: &str) -> Result<Fixture, UnknownEventType> {
        let created = chrono::Utc::now().timestamp();
        let world = World::new(created);
        let (object, previous) = object_for(event_type, &world).ok_or_else(|| UnknownEventType {
            event_type: event_type.into(),
        })?;
        let mut data = json!({ "object": object });
        if let Some(previous) = previous {
            data["previous_attributes"] = previous;
        }
        let request = if event_type.starts_with("customer.") && !event_type.contains("trial_will_end") {
            json!({ "id": stripe_id("req", 14), "idempotency_key": uuid_like() })
        } else {
            json!({ "id": null, "idempotency_key": null })
        };
        let event = json!({
            "id": stripe_id("evt", 24),
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": data,
            "livemode": false,
            "pending_webhooks": 1,
            "request": request,
            "type": event_type,
        });
        Ok(Fixture { event })
    }

    pub fn id(mut self, id: &str) -> Self {
        self.event["id"] = id.into();
        self
    }

    /// The event's `created` (unix seconds); orders events about the same object.
    pub fn created(mut self, created: i64) -> Self {
        self.event["created"] = created.into();
        self
    }

    /// Sets `livemode` on the event and its object.
    pub fn livemode(mut self, livemode: bool) -> Self {
        self.event["livemode"] = livemode.into();
        if self.event["data"]["object"].get("livemode").is_some() {
            self.event["data"]["object"]["livemode"] = livemode.into();
        }
        self
    }

    pub fn api_version(mut self, version: &str) -> Self {
        self.event["api_version"] = version.into();
        self
    }

    /// A Connect event, on behalf of `account`.
    pub fn account(mut self, account: &str) -> Self {
        self.event["account"] = account.into();
        self
    }

    /// The object's own id.
    pub fn object_id(self, id: &str) -> Self {
        self.set("id", id)
    }

    /// The customer the object belongs to (for `customer.*`, the object itself).
    pub fn customer(self, customer: &str) -> Self {
        if self.object()["object"] == "customer" {
            self.set("id", customer)
        } else {
            self.set("customer", customer)
        }
    }

    /// Sets a field of `data.object`; dots reach into nested objects (`evidence_details.due_by`).
    pub fn set(mut self, path: &str, value: impl Into<Value>) -> Self {
        let mut target = &mut self.event["data"]["object"];
        for key in path.split('.') {
            target = &mut target[key];
        }
        *target = value.into();
        self
    }

    pub fn event_id(&self) -> &str {
        self.event["id"].as_str().unwrap_or_default()
    }

    pub fn event_type(&self) -> &str {
        self.event["type"].as_str().unwrap_or_default()
    }

    /// `data.object`, e.g. to serve it from a fake Stripe API.
    pub fn object(&self) -> &Value {
        &self.event["data"]["object"]
    }

    pub fn value(&self) -> &Value {
        &self.event
    }

    /// The body as Stripe would POST it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.event).expect("JSON values serialise")
    }
}

/// An event of a type no built-in handler knows (about a product), to show "skipped".
pub fn unhandled(event_type: &str) -> Fixture {
    let created = chrono::Utc::now().timestamp();
    let product = json!({
        "id": stripe_id("prod", 14), "object": "product", "active": true, "created": created,
        "default_price": "price_1PqXd0LkdIwHu7ixPro001", "description": "Everything in Basic, and priority support.",
        "livemode": false, "metadata": {}, "name": "Pro plan", "type": "service", "updated": created
    });
    let event = json!({
        "id": stripe_id("evt", 24), "object": "event", "api_version": API_VERSION, "created": created,
        "data": { "object": product }, "livemode": false, "pending_webhooks": 1,
        "request": { "id": stripe_id("req", 14), "idempotency_key": uuid_like() }, "type": event_type,
    });
    Fixture { event }
}

fn uuid_like() -> String {
    let hex: String = hex::encode(rand::random::<[u8; 16]>());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `data.object` and `data.previous_attributes` for an event type, or `None` when unknown.
fn object_for(event_type: &str, w: &World) -> Option<(Value, Option<Value>)> {
    Some(match event_type {
        "customer.created" => (customer(w, false, "jenny.rosen@example.com"), None),
        "customer.updated" => (
            customer(w, true, "jenny.r@example.com"),
            Some(json!({ "delinquent": false, "email": "jenny.rosen@example.com" })),
        ),
        "customer.deleted" => (customer(w, true, "jenny.r@example.com"), None),
        "customer.subscription.created" => (subscription(w, "active", false), None),
        "customer.subscription.updated" => (subscription(w, "past_due", false), Some(json!({ "status": "active" }))),
        "customer.subscription.deleted" => {
            let mut s = subscription(w, "canceled", false);
            s["canceled_at"] = w.created.into();
            s["ended_at"] = w.created.into();
            (s, None)
        }
        "customer.subscription.paused" => (subscription(w, "paused", false), Some(json!({ "status": "trialing" }))),
        "customer.subscription.resumed" => (subscription(w, "active", false), Some(json!({ "status": "paused" }))),
        "customer.subscription.trial_will_end" => (subscription(w, "trialing", true), None),
        "invoice.payment_failed" => (invoice(w, "open", 1), None),
        "invoice.upcoming" => {
            let mut i = invoice(w, "draft", 0);
            i.as_object_mut()?.remove("id"); // an upcoming invoice does not exist yet
            i["hosted_invoice_url"] = Value::Null;
            i["charge"] = Value::Null;
            i["payment_intent"] = Value::Null;
            (i, None)
        }
        "invoice.finalized" => (invoice(w, "open", 0), Some(json!({ "status": "draft" }))),
        "invoice.paid" => {
            let mut i = invoice(w, "paid", 1);
            i["amount_paid"] = 2900.into();
            i["amount_remaining"] = 0.into();
            i["paid"] = true.into();
            i["next_payment_attempt"] = Value::Null;
            (i, None)
        }
        "payment_intent.payment_failed" => (payment_intent(w), None),
        "charge.failed" => (charge(w), None),
        "charge.dispute.created" => (dispute(w, "needs_response"), None),
        "charge.dispute.updated" => (dispute(w, "under_review"), Some(json!({ "status": "needs_response" }))),
        "charge.dispute.closed" => (dispute(w, "lost"), Some(json!({ "status": "under_review" }))),
        "charge.dispute.funds_withdrawn" => (dispute(w, "needs_response"), None),
        "charge.dispute.funds_reinstated" => (dispute(w, "won"), None),
        _ => return None,
    })
}

fn customer(w: &World, delinquent: bool, email: &str) -> Value {
    json!({
        "id": w.customer, "object": "customer", "address": null, "balance": 0,
        "created": w.created - 3_600, "currency": "usd", "default_source": null,
        "delinquent": delinquent, "description": null, "email": email,
        "invoice_prefix": "7A1C2E3F", "invoice_settings": { "default_payment_method": null },
        "livemode": false, "metadata": {}, "name": "Jenny Rosen", "phone": null,
        "preferred_locales": ["en"], "tax_exempt": "none"
    })
}

fn subscription(w: &World, status: &str, trialing: bool) -> Value {
    let period_start = w.created - 86_400;
    let period_end = period_start + 30 * 86_400;
    json!({
        "id": w.subscription, "object": "subscription", "billing_cycle_anchor": period_start,
        "cancel_at": null, "cancel_at_period_end": false, "canceled_at": null,
        "collection_method": "charge_automatically", "created": period_start,
        "currency": "usd", "current_period_end": period_end, "current_period_start": period_start,
        "customer": w.customer, "ended_at": null,
        "items": { "object": "list", "data": [{
            "id": stripe_id("si", 14), "object": "subscription_item",
            "price": { "id": w.price, "object": "price", "currency": "usd", "unit_amount": 2900,
                       "product": "prod_QhYkPro0Plan01", "recurring": { "interval": "month", "interval_count": 1 } },
            "quantity": 1 }], "has_more": false },
        "latest_invoice": w.invoice, "livemode": false, "metadata": {},
        "status": status,
        "trial_end": if trialing { json!(w.created + 3 * 86_400) } else { Value::Null },
        "trial_start": if trialing { json!(period_start) } else { Value::Null }
    })
}

fn invoice(w: &World, status: &str, attempt_count: i64) -> Value {
    json!({
        "id": w.invoice, "object": "invoice", "account_country": "US",
        "amount_due": 2900, "amount_paid": 0, "amount_remaining": 2900,
        "attempt_count": attempt_count, "attempted": attempt_count > 0,
        "billing_reason": "subscription_cycle", "charge": w.charge,
        "collection_method": "charge_automatically", "created": w.created - 3_600, "currency": "usd",
        "customer": w.customer, "customer_email": "jenny.rosen@example.com", "customer_name": "Jenny Rosen",
        "due_date": null,
        "hosted_invoice_url": format!("https://invoice.stripe.com/i/acct_1Example/test_{}", &w.invoice[3..]),
        "invoice_pdf": format!("https://pay.stripe.com/invoice/acct_1Example/test_{}/pdf", &w.invoice[3..]),
        "last_finalization_error": null, "livemode": false,
        "next_payment_attempt": if status == "open" && attempt_count > 0 { json!(w.created + 3 * 86_400) } else { json!(w.created + 86_400) },
        "paid": false, "payment_intent": w.payment_intent,
        "period_end": w.created, "period_start": w.created - 30 * 86_400,
        "status": status, "subscription": w.subscription, "total": 2900
    })
}

fn payment_intent(w: &World) -> Value {
    json!({
        "id": w.payment_intent, "object": "payment_intent", "amount": 2900, "amount_received": 0,
        "created": w.created - 5, "currency": "usd", "customer": w.customer,
        "description": "Subscription update", "invoice": w.invoice,
        "last_payment_error": {
            "charge": w.charge, "code": "card_declined", "decline_code": "insufficient_funds",
            "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            "message": "Your card has insufficient funds.", "type": "card_error"
        },
        "latest_charge": w.charge, "livemode": false, "metadata": {},
        "payment_method_types": ["card"], "receipt_email": null, "status": "requires_payment_method"
    })
}

fn charge(w: &World) -> Value {
    json!({
        "id": w.charge, "object": "charge", "amount": 2900, "amount_captured": 0, "amount_refunded": 0,
        "captured": false, "created": w.created, "currency": "usd", "customer": w.customer,
        "description": "Subscription update", "disputed": false,
        "failure_code": "card_declined", "failure_message": "Your card has insufficient funds.",
        "invoice": w.invoice, "livemode": false, "metadata": {},
        "outcome": {
            "network_status": "declined_by_network", "reason": "insufficient_funds", "risk_level": "normal",
            "seller_message": "The bank returned the decline code `insufficient_funds`.", "type": "issuer_declined"
        },
        "paid": false, "payment_intent": w.payment_intent,
        "payment_method_details": { "type": "card", "card": { "brand": "visa", "country": "US", "exp_month": 8, "exp_year": 2027, "last4": "9995" } },
        "status": "failed"
    })
}

fn dispute(w: &World, status: &str) -> Value {
    json!({
        "id": w.dispute, "object": "dispute", "amount": 2900, "balance_transactions": [],
        "charge": w.charge, "created": w.created, "currency": "usd",
        "evidence_details": { "due_by": w.created + 8 * 86_400 - 1, "has_evidence": false, "past_due": false, "submission_count": 0 },
        "is_charge_refundable": false, "livemode": false, "metadata": {},
        "payment_intent": w.payment_intent, "reason": "fraudulent", "status": status
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_type_builds_a_parseable_event() {
        for ty in KNOWN_TYPES {
            let f = Fixture::new(ty).unwrap();
            let event = crate::stripe::Event::parse(&f.to_json()).unwrap();
            assert_eq!(event.event_type, *ty);
            assert_eq!(event.api_version.as_deref(), Some(API_VERSION));
        }
        let mut sorted = KNOWN_TYPES.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, KNOWN_TYPES);
    }

    #[test]
    fn unknown_types_list_the_known_ones() {
        let e = Fixture::new("customer.exploded").unwrap_err();
        assert!(e.to_string().contains("customer.exploded"));
        assert!(e.to_string().contains("invoice.payment_failed"));
    }

    #[test]
    fn builders_reach_nested_fields() {
        let f = Fixture::new("payment_intent.payment_failed")
            .unwrap()
            .set("last_payment_error.decline_code", "expired_card");
        assert_eq!(f.object()["last_payment_error"]["decline_code"], "expired_card");
        assert_eq!(f.object()["last_payment_error"]["code"], "card_declined");
        let c = Fixture::new("customer.created").unwrap().customer("cus_1");
        assert_eq!(c.object()["id"], "cus_1");
    }
}
