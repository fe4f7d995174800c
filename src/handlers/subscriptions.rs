//! `customer.subscription.*` keep the subscription's current state. With a key the
//! subscription itself is fetched (`GET /v1/subscriptions/{id}`): the event is a snapshot,
//! the object is the truth now. Either generation: from basil on the period is on the items.

use serde::Deserialize;

use super::{Context, Handler};
use crate::executor::JobError;
use crate::store::records::Subscription;

pub const TYPES: &[&str] = &[
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
];

#[derive(Deserialize)]
struct SubscriptionObject {
    id: String,
    customer: String,
    status: String,
    #[serde(default)]
    cancel_at_period_end: bool,
    current_period_end: Option<i64>,
    trial_end: Option<i64>,
    #[serde(default)]
    items: Items,
}

#[derive(Deserialize, Default)]
struct Items {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    price: Option<Price>,
    quantity: Option<i64>,
    /// From basil (2025-03-31) on, each item has its own period.
    current_period_end: Option<i64>,
}

#[derive(Deserialize)]
struct Price {
    id: String,
}

pub struct Subscriptions;

#[async_trait::async_trait]
impl Handler for Subscriptions {
    async fn handle(&self, cx: &Context<'_>) -> Result<String, JobError> {
        let snapshot: SubscriptionObject = cx.object()?;
        let object = cx.fetch("subscriptions", &snapshot.id).await?.unwrap_or(snapshot);
        let first = object.items.data.first();
        let record = Subscription {
            id: object.id,
            customer: object.customer,
            status: object.status,
            price: first.and_then(|i| i.price.as_ref()).map(|p| p.id.clone()),
            quantity: first.and_then(|i| i.quantity),
            // Basil moved the period onto the items; the subscription renews when the first ends.
            current_period_end: object
                .current_period_end
                .or_else(|| object.items.data.iter().filter_map(|i| i.current_period_end).min()),
            cancel_at_period_end: object.cancel_at_period_end,
            trial_end: object.trial_end,
            livemode: cx.event.livemode,
            stripe_updated_at: cx.event.created,
            last_event_id: Some(cx.event.id.clone()),
        };
        let upsert = cx.store.upsert_subscription(&record, cx.stamp()).await?;
        Ok(cx.upserted(
            "subscription",
            &record.id,
            &format!("upserted ({})", record.status),
            upsert,
        ))
    }
}
