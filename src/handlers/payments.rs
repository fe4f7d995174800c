//! Failed payments: `invoice.payment_failed`, `payment_intent.payment_failed` and
//! `charge.failed` each fill the one `payment_failures` row of the failed try (keyed by
//! its charge), with the decline reason normalised. The customer hears about it once per
//! try: from the invoice event, or from the payment intent's when no invoice is involved.
//!
//! Before basil (2025-03-31) the three objects name each other (`invoice.charge`,
//! `payment_intent.invoice`, `charge.invoice`). From basil on they do not: with a key the
//! links are read from invoice payments (`GET /v1/invoice_payments?invoice=…` gives the
//! invoice's payment intent, whose `last_payment_error` names the failed try's charge and
//! its decline; `payment[payment_intent]` goes back from a payment intent to its invoice).
//! Without a key a basil invoice cannot be linked to its charge: its event gets a row of its
//! own, and the result says so.
use serde::Deserialize;

use super::notifications::{self, Kind};
use super::{Context, Handler};
use crate::executor::JobError;
use crate::store::records::{Notification, PaymentFailure};

pub const TYPES: &[&str] = &[
    "invoice.payment_failed",
    "payment_intent.payment_failed",
    "charge.failed",
];

/// Stripe's decline codes, grouped into what an application tells the customer.
pub fn decline_reason(decline_code: Option<&str>, failure_code: Option<&str>) -> &'static str {
    let specific = |code: &str| match code {
        "insufficient_funds" => Some("insufficient_funds"),
        "expired_card" => Some("expired_card"),
        "authentication_required" | "authentication_not_handled" | "payment_intent_authentication_failure" => {
            Some("authentication_required")
        }
        "do_not_honor"
        | "restricted_card"
        | "transaction_not_allowed"
        | "not_permitted"
        | "security_violation"
        | "service_not_allowed"
        | "stop_payment_order"
        | "revocation_of_authorization"
        | "revocation_of_all_authorizations"
        | "currency_not_supported"
        | "card_not_supported" => Some("bank_restriction"),
        "card_declined"
        | "generic_decline"
        | "call_issuer"
        | "fraudulent"
        | "lost_card"
        | "stolen_card"
        | "pickup_card"
        | "card_velocity_exceeded"
        | "withdrawal_count_limit_exceeded"
        | "incorrect_cvc"
        | "invalid_cvc"
        | "incorrect_number"
        | "invalid_account"
        | "try_again_later" => Some("card_declined"),
        _ => None,
    };
    // The decline code is the issuer's answer; `card_declined` alone says only that it declined.
    decline_code
        .and_then(specific)
        .or_else(|| failure_code.and_then(specific))
        .unwrap_or("other")
}

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

/// Why one try failed, from its charge or its payment intent's `last_payment_error`.
#[derive(Default)]
struct Decline {
    charge: Option<String>,
    /// The issuer's answer: the charge's `outcome.reason`, the payment error's `decline_code`.
    decline_code: Option<String>,
    /// Stripe's: the charge's `failure_code`, the payment error's `code`.
    failure_code: Option<String>,
    message: Option<String>,
}

impl Decline {
    fn reason(&self) -> &'static str {
        decline_reason(self.decline_code.as_deref(), self.failure_code.as_deref())
    }

    fn code(&self) -> Option<String> {
        self.decline_code.clone().or_else(|| self.failure_code.clone())
    }
}

impl From<&ChargeObject> for Decline {
    fn from(c: &ChargeObject) -> Decline {
        Decline {
            charge: Some(c.id.clone()),
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
    notify: Option<Notification>,
    notes: Vec<String>,
}

pub struct PaymentFailures;

#[async_trait::async_trait]
impl Handler for PaymentFailures {
    async fn handle(&self, cx: &Context<'_>) -> Result<String, JobError> {
        let Found { failure, notify, notes } = match cx.event.event_type.as_str() {
            "invoice.payment_failed" => from_invoice(cx).await?,
            "payment_intent.payment_failed" => from_payment_intent(cx).await?,
            _ => from_charge(cx).await?,
        };
        cx.store.merge_payment_failure(&failure).await?;
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
            // The failed try's charge and decline are the payment intent's last error.
            let intent: Option<PaymentIntentObject> = match &payment_intent {
                Some(id) => cx.fetch("payment_intents", id).await?,
                None => None,
            };
            intent
                .and_then(|i| i.last_payment_error)
                .map(|e| Decline::from(&e))
                .unwrap_or_default()
        }
    };
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
        reason: decline.reason().into(),
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
    let link = invoice_link(cx, intent.invoice.clone(), Some(&intent.id)).await?;
    let failure = PaymentFailure {
        id: failure_id(cx, &decline.charge, &Some(intent.id.clone())),
        customer: intent.customer.clone(),
        invoice: link.invoice(),
        payment_intent: Some(intent.id.clone()),
        charge: decline.charge.clone(),
        amount: intent.amount,
        currency: intent.currency.clone(),
        reason: decline.reason().into(),
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
    Ok(Found { failure, notify, notes })
}

async fn from_charge(cx: &Context<'_>) -> Result<Found, JobError> {
    let charge: ChargeObject = cx.object()?;
    let decline = Decline::from(&charge);
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
        reason: decline.reason().into(),
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
        notify: None,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::decline_reason;

    #[test]
    fn decline_codes_fall_into_a_small_set() {
        assert_eq!(
            decline_reason(Some("insufficient_funds"), Some("card_declined")),
            "insufficient_funds"
        );
        assert_eq!(decline_reason(None, Some("expired_card")), "expired_card");
        assert_eq!(
            decline_reason(Some("do_not_honor"), Some("card_declined")),
            "bank_restriction"
        );
        assert_eq!(
            decline_reason(Some("transaction_not_allowed"), None),
            "bank_restriction"
        );
        assert_eq!(
            decline_reason(Some("generic_decline"), Some("card_declined")),
            "card_declined"
        );
        assert_eq!(
            decline_reason(None, Some("authentication_required")),
            "authentication_required"
        );
        assert_eq!(
            decline_reason(Some("something_new"), Some("card_declined")),
            "card_declined"
        );
        assert_eq!(decline_reason(Some("something_new"), None), "other");
        assert_eq!(decline_reason(None, None), "other");
    }
}
