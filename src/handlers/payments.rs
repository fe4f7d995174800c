//! Failed payments: `invoice.payment_failed`, `payment_intent.payment_failed` and
//! `charge.failed` each fill the one `payment_failures` row of the failed try (keyed by
//! its charge), with the decline reason normalised. The customer hears about it once:
//! from the invoice event, or from the payment intent's when no invoice is involved.
//!
//! With a key, `invoice.payment_failed` fetches the invoice's charge for the decline
//! reason, which the invoice itself does not carry.

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

impl ChargeObject {
    /// The issuer's decline code (`outcome.reason`) and Stripe's failure code.
    fn decline(&self) -> (Option<&str>, Option<&str>) {
        (
            self.outcome.as_ref().and_then(|o| o.reason.as_deref()),
            self.failure_code.as_deref(),
        )
    }

    fn code(&self) -> Option<String> {
        let (decline, failure) = self.decline();
        decline.or(failure).map(String::from)
    }
}

pub struct PaymentFailures;

#[async_trait::async_trait]
impl Handler for PaymentFailures {
    async fn handle(&self, cx: &Context<'_>) -> Result<String, JobError> {
        let (failure, notify) = match cx.event.event_type.as_str() {
            "invoice.payment_failed" => from_invoice(cx).await?,
            "payment_intent.payment_failed" => from_payment_intent(cx)?,
            _ => (from_charge(cx)?, None),
        };
        cx.store.merge_payment_failure(&failure).await?;
        let mut result = format!("payment failure {} recorded ({})", failure.id, failure.reason);
        if let Some(mut notification) = notify {
            // The merged row may know the reason from another event of the same try.
            let merged = cx.store.payment_failure(&failure.id).await?;
            notification.reason = Some(merged.map_or(failure.reason, |m| m.reason));
            result = format!("{result}; {}", notifications::queue(cx, notification).await?);
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

async fn from_invoice(cx: &Context<'_>) -> Result<(PaymentFailure, Option<Notification>), JobError> {
    let invoice: InvoiceObject = cx.object()?;
    let charge: Option<ChargeObject> = match &invoice.charge {
        Some(id) => cx.fetch("charges", id).await?,
        None => None,
    };
    let (decline, failure) = charge.as_ref().map(ChargeObject::decline).unwrap_or_default();
    let reason = decline_reason(decline, failure);
    let message = charge.as_ref().and_then(|c| c.failure_message.clone());
    let failure = PaymentFailure {
        id: failure_id(cx, &invoice.charge, &invoice.payment_intent),
        customer: invoice.customer.clone(),
        invoice: Some(invoice.id.clone()),
        payment_intent: invoice.payment_intent,
        charge: invoice.charge,
        amount: invoice.amount_due,
        currency: invoice.currency.clone(),
        reason: reason.into(),
        code: charge.as_ref().and_then(ChargeObject::code),
        message: message.clone(),
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
        message,
        ..notifications::new(cx, Kind::PaymentFailed)
    };
    Ok((failure, Some(notification)))
}

fn from_payment_intent(cx: &Context<'_>) -> Result<(PaymentFailure, Option<Notification>), JobError> {
    let intent: PaymentIntentObject = cx.object()?;
    let error = intent.last_payment_error.as_ref();
    let charge = error.and_then(|e| e.charge.clone());
    let decline = error.and_then(|e| e.decline_code.clone());
    let code = error.and_then(|e| e.code.clone());
    let failure = PaymentFailure {
        id: failure_id(cx, &charge, &Some(intent.id.clone())),
        customer: intent.customer.clone(),
        invoice: intent.invoice.clone(),
        payment_intent: Some(intent.id),
        charge,
        amount: intent.amount,
        currency: intent.currency.clone(),
        reason: decline_reason(decline.as_deref(), code.as_deref()).into(),
        code: decline.or(code),
        message: error.and_then(|e| e.message.clone()),
        attempt_count: None,
        next_payment_attempt: None,
        failed_at: cx.event.created,
        livemode: cx.event.livemode,
    };
    // An invoice's failure is told by `invoice.payment_failed`, with the invoice link.
    let notification = intent.invoice.is_none().then(|| Notification {
        customer: intent.customer,
        email: intent.receipt_email,
        amount: intent.amount,
        currency: intent.currency,
        message: failure.message.clone(),
        ..notifications::new(cx, Kind::PaymentFailed)
    });
    Ok((failure, notification))
}

fn from_charge(cx: &Context<'_>) -> Result<PaymentFailure, JobError> {
    let charge: ChargeObject = cx.object()?;
    let (decline, failure) = charge.decline();
    Ok(PaymentFailure {
        id: charge.id.clone(),
        reason: decline_reason(decline, failure).into(),
        code: charge.code(),
        customer: charge.customer,
        invoice: charge.invoice,
        payment_intent: charge.payment_intent,
        charge: Some(charge.id),
        amount: charge.amount,
        currency: charge.currency,
        message: charge.failure_message,
        attempt_count: None,
        next_payment_attempt: None,
        failed_at: cx.event.created,
        livemode: cx.event.livemode,
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
