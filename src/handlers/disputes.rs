//! Disputes: `charge.dispute.created` records the dispute and holds it and its customer;
//! `charge.dispute.closed` releases the hold and records won or lost;
//! `charge.dispute.funds_withdrawn` / `funds_reinstated` are recorded whenever they arrive.
//!
//! A dispute does not name its customer: with a key the disputed charge is fetched
//! (`GET /v1/charges/{id}`) to find it; without one the customer's hold cannot be set.

use serde::Deserialize;

use super::{Context, Handler};
use crate::executor::JobError;
use crate::store::records::{Dispute, Upsert};

pub const TYPES: &[&str] = &[
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
];

/// Statuses after which nothing more happens to a dispute.
const CLOSED: &[&str] = &["won", "lost", "warning_closed", "prevented"];

#[derive(Deserialize)]
struct DisputeObject {
    id: String,
    charge: Option<String>,
    payment_intent: Option<String>,
    amount: Option<i64>,
    currency: Option<String>,
    reason: Option<String>,
    status: String,
    evidence_details: Option<EvidenceDetails>,
}

#[derive(Deserialize)]
struct EvidenceDetails {
    due_by: Option<i64>,
}

#[derive(Deserialize)]
struct ChargeObject {
    customer: Option<String>,
}

pub struct Disputes;

#[async_trait::async_trait]
impl Handler for Disputes {
    async fn handle(&self, cx: &Context<'_>) -> Result<String, JobError> {
        let dispute: DisputeObject = cx.object()?;
        let customer = match &dispute.charge {
            Some(charge) => cx
                .fetch::<ChargeObject>("charges", charge)
                .await?
                .and_then(|c| c.customer),
            None => None,
        };
        let ty = cx.event.event_type.as_str();
        let closed = ty == "charge.dispute.closed" || CLOSED.contains(&dispute.status.as_str());
        let record = Dispute {
            id: dispute.id,
            charge: dispute.charge,
            payment_intent: dispute.payment_intent,
            customer,
            amount: dispute.amount,
            currency: dispute.currency,
            reason: dispute.reason,
            hold: !closed,
            outcome: closed.then(|| dispute.status.clone()),
            status: dispute.status,
            evidence_due_by: dispute.evidence_details.and_then(|e| e.due_by),
            funds_withdrawn: ty == "charge.dispute.funds_withdrawn",
            funds_reinstated: ty == "charge.dispute.funds_reinstated",
            livemode: cx.event.livemode,
            stripe_updated_at: cx.event.created,
            last_event_id: Some(cx.event.id.clone()),
        };
        let upsert = cx.store.upsert_dispute(&record, cx.stamp()).await?;
        let done = match (ty, &record.outcome) {
            ("charge.dispute.funds_withdrawn", _) => "recorded: funds withdrawn".to_string(),
            ("charge.dispute.funds_reinstated", _) => "recorded: funds reinstated".to_string(),
            (_, Some(outcome)) => format!("closed ({outcome}), hold released"),
            (_, None) => "recorded, on hold".to_string(),
        };
        let flag = record.funds_withdrawn || record.funds_reinstated;
        let mut result = match (&upsert, flag) {
            // The funds movement is history, not state: it counts even when a newer event came first.
            (Upsert::Stale { .. }, true) => format!("dispute {} {done} (its status reflects a newer event)", record.id),
            _ => cx.upserted("dispute", &record.id, &done, upsert),
        };
        match &record.customer {
            Some(customer) => result.push_str(&format!("; customer {customer} hold recomputed")),
            None if ty == "charge.dispute.created" && !cx.has_api() => {
                result.push_str("; customer unknown without STRIPE_SECRET_KEY, no customer hold")
            }
            None => {}
        }
        Ok(result)
    }
}
