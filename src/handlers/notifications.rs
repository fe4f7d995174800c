//! The notification outbox: one message per (kind, source event), `pending` until the
//! application sends it. `invoice.upcoming` → `upcoming_charge`, `invoice.finalized` /
//! `invoice.paid` → `invoice_email`, `customer.subscription.trial_will_end` →
//! `trial_ending`; `payment_failed` is queued by the payment failure handler.

use serde::Deserialize;

use super::{Context, Handler};
use crate::executor::JobError;
use crate::store::records::Notification;

pub const TYPES: &[&str] = &[
    "invoice.upcoming",
    "invoice.finalized",
    "invoice.paid",
    "customer.subscription.trial_will_end",
];

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    PaymentFailed,
    UpcomingCharge,
    InvoiceEmail,
    TrialEnding,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PaymentFailed => "payment_failed",
            Kind::UpcomingCharge => "upcoming_charge",
            Kind::InvoiceEmail => "invoice_email",
            Kind::TrialEnding => "trial_ending",
        }
    }
}

/// An empty notification of `kind` from this event, for the caller to fill.
pub fn new(cx: &Context<'_>, kind: Kind) -> Notification {
    Notification {
        kind: kind.as_str().into(),
        event_id: cx.event.id.clone(),
        status: "pending".into(),
        ..Default::default()
    }
}

/// Queues it once, with the customer's stored email when the event carries none.
pub async fn queue(cx: &Context<'_>, mut n: Notification) -> Result<String, JobError> {
    if let (None, Some(customer)) = (&n.email, &n.customer) {
        n.email = cx.store.customer_email(customer).await?;
    }
    let to = n.customer.as_deref().unwrap_or("an unknown customer");
    Ok(if cx.store.queue_notification(&n).await? {
        format!("notification {} queued for {to}", n.kind)
    } else {
        format!("notification {} already queued for {}", n.kind, n.event_id)
    })
}

#[derive(Deserialize)]
struct InvoiceObject {
    customer: Option<String>,
    customer_email: Option<String>,
    amount_due: Option<i64>,
    amount_paid: Option<i64>,
    currency: Option<String>,
    next_payment_attempt: Option<i64>,
    period_end: Option<i64>,
    due_date: Option<i64>,
    hosted_invoice_url: Option<String>,
}

#[derive(Deserialize)]
struct SubscriptionObject {
    customer: String,
    trial_end: Option<i64>,
}

pub struct Notifications;

#[async_trait::async_trait]
impl Handler for Notifications {
    async fn handle(&self, cx: &Context<'_>) -> Result<String, JobError> {
        let notification = match cx.event.event_type.as_str() {
            "customer.subscription.trial_will_end" => {
                let sub: SubscriptionObject = cx.object()?;
                Notification {
                    customer: Some(sub.customer),
                    due_at: sub.trial_end,
                    ..new(cx, Kind::TrialEnding)
                }
            }
            ty => {
                let invoice: InvoiceObject = cx.object()?;
                let (kind, amount, due_at) = match ty {
                    "invoice.upcoming" => (
                        Kind::UpcomingCharge,
                        invoice.amount_due,
                        invoice.next_payment_attempt.or(invoice.period_end),
                    ),
                    "invoice.paid" => (Kind::InvoiceEmail, invoice.amount_paid.or(invoice.amount_due), None),
                    _ => (Kind::InvoiceEmail, invoice.amount_due, invoice.due_date),
                };
                Notification {
                    customer: invoice.customer,
                    email: invoice.customer_email,
                    amount,
                    currency: invoice.currency,
                    due_at,
                    url: invoice.hosted_invoice_url,
                    ..new(cx, kind)
                }
            }
        };
        queue(cx, notification).await
    }
}
