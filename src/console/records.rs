//! The records pages and the object timeline, over the store's record reads.

use app::error::ConsoleError;
use domain::records::{ObjectRecord, ObjectTimeline, RecordFilter, RecordKind, RecordPage, RecordRows, TimelineEntry};

use super::store_error;
use crate::store::records_read::check_record_filter;
use crate::store::{Store, rfc3339};

/// Executions shown on one object's timeline; an object with more says so.
pub const TIMELINE_LIMIT: i64 = 500;
/// Related records of each kind shown beside an object.
const RELATED_LIMIT: u32 = 20;

pub async fn page(store: &Store, filter: &RecordFilter) -> Result<RecordPage, ConsoleError> {
    check_record_filter(filter).map_err(ConsoleError::Invalid)?;
    store.records(filter).await.map_err(store_error)
}

pub async fn timeline(store: &Store, id: &str) -> Result<ObjectTimeline, ConsoleError> {
    let id = id.trim();
    if id.is_empty() || id.len() > 255 {
        return Err(ConsoleError::Invalid("an object id is 1 to 255 characters".into()));
    }
    let mut rows = store
        .object_executions(id, TIMELINE_LIMIT + 1)
        .await
        .map_err(store_error)?;
    let truncated = rows.len() as i64 > TIMELINE_LIMIT;
    rows.truncate(TIMELINE_LIMIT as usize);
    let views = store.views(&rows).await.map_err(store_error)?;
    let entries = rows
        .iter()
        .zip(views)
        .map(|(row, execution)| TimelineEntry {
            event_created: rfc3339(row.event_created.saturating_mul(1000)),
            execution,
        })
        .collect::<Vec<_>>();
    let record = store.object_record(id).await.map_err(store_error)?;
    if entries.is_empty() && record.is_none() {
        return Err(ConsoleError::NotFound(format!(
            "nothing is known about `{id}`: no execution and no record"
        )));
    }
    let related = related(store, id, record.as_ref()).await?;
    Ok(ObjectTimeline {
        id: id.to_string(),
        entries,
        truncated,
        record,
        related,
    })
}

/// A customer's records of every kind; for the others, the customer they name.
async fn related(store: &Store, id: &str, record: Option<&ObjectRecord>) -> Result<Vec<RecordRows>, ConsoleError> {
    let customer = match record {
        Some(ObjectRecord::Customer(_)) | None => None,
        Some(ObjectRecord::Subscription(s)) => Some(s.customer.clone()),
        Some(ObjectRecord::PaymentFailure(f)) => f.customer.clone(),
        Some(ObjectRecord::Dispute(d)) => d.customer.clone(),
    };
    if let Some(customer) = customer {
        return Ok(match store.object_record(&customer).await.map_err(store_error)? {
            Some(ObjectRecord::Customer(c)) => vec![RecordRows::Customers(vec![c])],
            _ => Vec::new(),
        });
    }
    if !matches!(record, Some(ObjectRecord::Customer(_))) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for kind in [
        RecordKind::Subscriptions,
        RecordKind::PaymentFailures,
        RecordKind::Disputes,
        RecordKind::Notifications,
    ] {
        let filter = RecordFilter {
            customer: Some(id.to_string()),
            limit: Some(RELATED_LIMIT),
            ..RecordFilter::new(kind)
        };
        let page = store.records(&filter).await.map_err(store_error)?;
        if !page.rows.is_empty() {
            out.push(page.rows);
        }
    }
    Ok(out)
}
