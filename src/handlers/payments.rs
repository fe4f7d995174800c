//! Failed payments: `invoice.payment_failed`, `payment_intent.payment_failed` and
//! `charge.failed` each fill the one `payment_failures` row of the failed try (keyed by
//! its charge), with the decline reason normalised. The customer hears about it once per
//! try: from the invoice event, or from the payment intent's when no invoice is involved.
//!
//! Before basil (2025-03-31) the three objects name each other (`invoice.charge`,
//! `payment_intent.invoice`, `charge.invoice`). From basil on they do not: with a key the
//! links are read from invoice payments (`GET /v1/invoice_payments?invoice=…` gives the
//! invoice's payment intent, whose newest failed charge made by the event's `created` is the
//! try: see [`failed_try`]; `payment[payment_intent]` goes back from a payment intent to its
//! invoice). Without a key a basil invoice cannot be linked to its charge: its event gets a row
//! of its own, and the result says so. Which event's decline reason wins: `declines`.
use serde::Deserialize;

use super::declines::Decline;
use super::notifications::{self, Kind};
use super::{Context, Handler};
use crate::executor::JobError;
use crate::store::records::{Notification, PaymentFailure};

pub const TYPES: &[&str] = &[
    "invoice.payment_failed",
    "payment_intent.payment_failed",
    "charge.failed",
];

/// The fields read. Pre-basil invoices also name their `charge` and `payment_intent`.
#[derive(Deserialize)]
struct InvoiceObject {
    id: String,
    customer: Option<String>,
    customer_email: Option<String>,
    amount_due: Option<i64>,
    currency: Option<String>,
    attempt_count: Option<i64>,
    next_payment_attempt: Option<i64>,
    charge: Option<String>,
    payment_intent: Option<String>,
    hosted_invoice_url: Option<String>,
}

/// Pre-basil payment intents also name their `invoice`.
#[derive(Deserialize)]
struct PaymentIntentObject {
    id: String,
    customer: Option<String>,
    invoice: Option<String>,
    amount: Option<i64>,
    currency: Option<String>,
    receipt_email: Option<String>,
    last_payment_error: Option<PaymentError>,
}

#[derive(Deserialize)]
struct PaymentError {
    code: Option<String>,
    decline_code: Option<String>,
    message: Option<String>,
    charge: Option<String>,
}

/// Pre-basil charges also name their `invoice`.
#[derive(Deserialize)]
struct ChargeObject {
    id: String,
    customer: Option<String>,
    invoice: Option<String>,
    payment_intent: Option<String>,
    amount: Option<i64>,
    currency: Option<String>,
    failure_code: Option<String>,
    failure_message: Option<String>,
    outcome: Option<Outcome>,
    /// `succeeded`, `pending` or `failed`.
    status: Option<String>,
}

#[derive(Deserialize)]
struct Outcome {
    reason: Option<String>,
}

/// An invoice payment (basil on): which payment intent pays, or tries to pay, which invoice.
#[derive(Deserialize)]
struct InvoicePayment {
    invoice: String,
    #[serde(default)]
    is_default: bool,
    payment: PaymentRef,
}

#[derive(Deserialize)]
struct PaymentRef {
    payment_intent: Option<String>,
}

impl From<&ChargeObject> for Decline {
    fn from(c: &ChargeObject) -> Decline {
        Decline {
            charge: Some(c.id.clone()),
            from_charge: true,
            decline_code: c.outcome.as_ref().and_then(|o| o.reason.clone()),
            failure_code: c.failure_code.clone(),
            message: c.failure_message.clone(),
        }
    }
}

impl From<&PaymentError> for Decline {
    fn from(e: &PaymentError) -> Decline {
        Decline {
            charge: e.charge.clone(),
            from_charge: false,
            decline_code: e.decline_code.clone(),
            failure_code: e.code.clone(),
            message: e.message.clone(),
        }
    }
}

/// Whether a payment belongs to an invoice.
enum InvoiceLink {
    Invoice(String),
    NoInvoice,
    /// A basil payload names none and there is no key to ask Stripe.
    Unknown,
}

impl InvoiceLink {
    fn invoice(&self) -> Option<String> {
        match self {
            InvoiceLink::Invoice(id) => Some(id.clone()),
            _ => None,
        }
    }
}

/// What an event says about its try, and what could not be linked.
struct Found {
    failure: PaymentFailure,
    /// The rank of the field its reason came from ([`Decline::reason`]).
    rank: i64,
    notify: Option<Notification>,
    notes: Vec<String>,
}

pub struct PaymentFailures;

#[async_trait::async_trait]
impl Handler for PaymentFailures {
    async fn handle(&self, cx: &Context<'_>) -> Result<String, JobError> {
        let Found {
            failure,
            rank,
            notify,
            notes,
        } = match cx.event.event_type.as_str() {
            "invoice.payment_failed" => from_invoice(cx).await?,
            "payment_intent.payment_failed" => from_payment_intent(cx).await?,
            _ => from_charge(cx).await?,
        };
        cx.store.merge_payment_failure(&failure, rank).await?;
        let mut result = format!("payment failure {} recorded ({})", failure.id, failure.reason);
        if let Some(mut notification) = notify {
            // The merged row may know the reason from another event of the same try.
            let merged = cx.store.payment_failure(&failure.id).await?;
            notification.reason = Some(merged.map_or(failure.reason, |m| m.reason));
            result = format!("{result}; {}", notifications::queue(cx, notification).await?);
        }
        for note in notes {
            result = format!("{result}; {note}");
        }
        Ok(result)
    }
}

/// The row of one failed try: its charge, else its payment intent, else this event.
fn failure_id(cx: &Context<'_>, charge: &Option<String>, payment_intent: &Option<String>) -> String {
    charge
        .clone()
        .or_else(|| payment_intent.clone())
        .unwrap_or_else(|| cx.event.id.clone())
}

/// The payment intent of an invoice's payments that the failed collection tried: the default
/// payment (Stripe keeps it in step with what remains due), else the first listed (the newest).
fn invoice_payment_intent(payments: &[InvoicePayment]) -> Option<String> {
    let with_intent = || payments.iter().filter(|p| p.payment.payment_intent.is_some());
    with_intent()
        .find(|p| p.is_default)
        .or_else(|| with_intent().next())
        .and_then(|p| p.payment.payment_intent.clone())
}

/// Why the try of a basil invoice's event failed, from its payment intent's charges. The payment
/// intent's `last_payment_error` is the latest try's and moves on at the next retry, so an event
/// processed late would land on a later try: instead its charges made up to the event's `created`
/// are listed (`GET /v1/charges?payment_intent=…&created[lte]=…`, newest first), and the newest
/// failed one is the try (a payment intent has at most one successful charge, so one page holds
/// it). A failure that made no charge is only in `last_payment_error`, which then names none.
async fn failed_try(cx: &Context<'_>, payment_intent: &str) -> Result<Decline, JobError> {
    let created = cx.event.created.to_string();
    let filters = [("payment_intent", payment_intent), ("created[lte]", created.as_str())];
    let charges = cx.list::<ChargeObject>("charges", &filters).await?.unwrap_or_default();
    if let Some(failed) = charges.iter().find(|c| c.status.as_deref() == Some("failed")) {
        return Ok(Decline::from(failed));
    }
    let intent: Option<PaymentIntentObject> = cx.fetch("payment_intents", payment_intent).await?;
    Ok(intent
        .and_then(|i| i.last_payment_error)
        .filter(|e| e.charge.is_none())
        .map(|e| Decline::from(&e))
        .unwrap_or_default())
}

/// The invoice a payment intent pays: named by a pre-basil payload, else asked of Stripe.
async fn invoice_link(
    cx: &Context<'_>,
    named: Option<String>,
    payment_intent: Option<&str>,
) -> Result<InvoiceLink, JobError> {
    if let Some(invoice) = named {
        return Ok(InvoiceLink::Invoice(invoice));
    }
    // Before basil the payload names its invoice when it has one; a charge without a payment
    // intent is not an invoice's failed try.
    let (true, Some(payment_intent)) = (cx.is_basil(), payment_intent) else {
        return Ok(InvoiceLink::NoInvoice);
    };
    let filters = [
        ("payment[type]", "payment_intent"),
        ("payment[payment_intent]", payment_intent),
    ];
    Ok(match cx.list::<InvoicePayment>("invoice_payments", &filters).await? {
        None => InvoiceLink::Unknown,
        Some(payments) => payments
            .into_iter()
            .next()
            .map_or(InvoiceLink::NoInvoice, |p| InvoiceLink::Invoice(p.invoice)),
    })
}

async fn from_invoice(cx: &Context<'_>) -> Result<Found, JobError> {
    let invoice: InvoiceObject = cx.object()?;
    let mut payment_intent = invoice.payment_intent.clone();
    let decline = match &invoice.charge {
        // Before basil: the invoice names its charge, which says why it failed.
        Some(id) => cx
            .fetch::<ChargeObject>("charges", id)
            .await?
            .map(|c| Decline::from(&c))
            .unwrap_or(Decline {
                charge: Some(id.clone()),
                ..Decline::default()
            }),
        None => {
            if payment_intent.is_none() {
                let filters = [("invoice", invoice.id.as_str())];
                if let Some(payments) = cx.list::<InvoicePayment>("invoice_payments", &filters).await? {
                    payment_intent = invoice_payment_intent(&payments);
                }
            }
            match &payment_intent {
                Some(id) => failed_try(cx, id).await?,
                None => Decline::default(),
            }
        }
    };
    let (reason, rank) = decline.reason();
    let mut notes = Vec::new();
    if decline.charge.is_none() {
        notes.push(if cx.has_api() {
            format!("not linked: Stripe lists no failed charge for invoice {}", invoice.id)
        } else {
            format!(
                "not linked: invoice {} names no charge or payment intent in API version {}; without \
                 STRIPE_SECRET_KEY this try cannot be matched with its payment intent's and charge's events",
                invoice.id,
                cx.version()
            )
        });
    }
    let failure = PaymentFailure {
        id: failure_id(cx, &decline.charge, &payment_intent),
        customer: invoice.customer.clone(),
        invoice: Some(invoice.id.clone()),
        payment_intent,
        charge: decline.charge.clone(),
        amount: invoice.amount_due,
        currency: invoice.currency.clone(),
        reason: reason.into(),
        code: decline.code(),
        message: decline.message.clone(),
        attempt_count: invoice.attempt_count,
        next_payment_attempt: invoice.next_payment_attempt,
        failed_at: cx.event.created,
        livemode: cx.event.livemode,
    };
    let notification = Notification {
        customer: invoice.customer,
        email: invoice.customer_email,
        amount: invoice.amount_due,
        currency: invoice.currency,
        due_at: invoice.next_payment_attempt,
        url: invoice.hosted_invoice_url,
        message: decline.message,
        ..notifications::new(cx, Kind::PaymentFailed)
    };
    Ok(Found {
        failure,
        rank,
        notify: Some(notification),
        notes,
    })
}

async fn from_payment_intent(cx: &Context<'_>) -> Result<Found, JobError> {
    let intent: PaymentIntentObject = cx.object()?;
    let decline = intent
        .last_payment_error
        .as_ref()
        .map(Decline::from)
        .unwrap_or_default();
    let (reason, rank) = decline.reason();
    let link = invoice_link(cx, intent.invoice.clone(), Some(&intent.id)).await?;
    let failure = PaymentFailure {
        id: failure_id(cx, &decline.charge, &Some(intent.id.clone())),
        customer: intent.customer.clone(),
        invoice: link.invoice(),
        payment_intent: Some(intent.id.clone()),
        charge: decline.charge.clone(),
        amount: intent.amount,
        currency: intent.currency.clone(),
        reason: reason.into(),
        code: decline.code(),
        message: decline.message.clone(),
        attempt_count: None,
        next_payment_attempt: None,
        failed_at: cx.event.created,
        livemode: cx.event.livemode,
    };
    let mut notes = Vec::new();
    // An invoice's failure is told by `invoice.payment_failed`, with the invoice link.
    let notify = match link {
        InvoiceLink::NoInvoice => Some(Notification {
            customer: intent.customer,
            email: intent.receipt_email,
            amount: intent.amount,
            currency: intent.currency,
            message: decline.message,
            ..notifications::new(cx, Kind::PaymentFailed)
        }),
        InvoiceLink::Invoice(_) => None,
        InvoiceLink::Unknown => {
            notes.push(format!(
                "not linked: payment intent {} names no invoice in API version {}; without STRIPE_SECRET_KEY \
                 it cannot be told whether it pays one, so the customer is not notified from this event \
                 (an invoice's failure is notified by invoice.payment_failed)",
                intent.id,
                cx.version()
            ));
            None
        }
    };
    Ok(Found {
        failure,
        rank,
        notify,
        notes,
    })
}

async fn from_charge(cx: &Context<'_>) -> Result<Found, JobError> {
    let charge: ChargeObject = cx.object()?;
    let decline = Decline::from(&charge);
    let (reason, rank) = decline.reason();
    let link = invoice_link(cx, charge.invoice.clone(), charge.payment_intent.as_deref()).await?;
    let mut notes = Vec::new();
    if let InvoiceLink::Unknown = link {
        notes.push(format!(
            "not linked: charge {} names no invoice in API version {}; without STRIPE_SECRET_KEY its invoice, \
             if any, stays unknown",
            charge.id,
            cx.version()
        ));
    }
    let failure = PaymentFailure {
        id: charge.id.clone(),
        reason: reason.into(),
        code: decline.code(),
        customer: charge.customer,
        invoice: link.invoice(),
        payment_intent: charge.payment_intent,
        charge: Some(charge.id),
        amount: charge.amount,
        currency: charge.currency,
        message: charge.failure_message,
        attempt_count: None,
        next_payment_attempt: None,
        failed_at: cx.event.created,
        livemode: cx.event.livemode,
    };
    Ok(Found {
        failure,
        rank,
        notify: None,
        notes,
    })
}
