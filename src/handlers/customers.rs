//! `customer.created` / `customer.updated` upsert the customer; `customer.deleted` marks it deleted.

use serde::Deserialize;

use super::{Context, Handler};
use crate::executor::JobError;
use crate::store::records::Customer;

pub const TYPES: &[&str] = &["customer.created", "customer.updated", "customer.deleted"];

#[derive(Deserialize)]
struct CustomerObject {
    id: String,
    email: Option<String>,
    name: Option<String>,
    #[serde(default)]
    delinquent: Option<bool>,
}

pub struct Customers;

#[async_trait::async_trait]
impl Handler for Customers {
    async fn handle(&self, cx: &Context<'_>) -> Result<String, JobError> {
        let object: CustomerObject = cx.object()?;
        let deleted = cx.event.event_type == "customer.deleted";
        let record = Customer {
            id: object.id,
            email: object.email,
            name: object.name,
            delinquent: object.delinquent.unwrap_or(false),
            deleted,
            on_hold: false, // kept by the disputes, not by customer events
            livemode: cx.event.livemode,
            stripe_updated_at: cx.event.created,
            last_event_id: Some(cx.event.id.clone()),
        };
        let upsert = cx.store.upsert_customer(&record, cx.stamp()).await?;
        Ok(cx.upserted(
            "customer",
            &record.id,
            if deleted { "marked deleted" } else { "upserted" },
            upsert,
        ))
    }
}
