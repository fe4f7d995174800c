//! Storing verified events: one execution per Stripe event id, in the same transaction.

use std::collections::{HashMap, HashSet};

use super::{Result, Store};

/// What the ingest keeps of a verified event.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    pub event_type: String,
    /// Stripe's `created`, unix seconds.
    pub created: i64,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub account: Option<String>,
    pub object_id: Option<String>,
    pub object_type: Option<String>,
    /// The verified body, verbatim.
    pub payload: String,
    /// When the execution is first due (unix ms).
    pub run_at: i64,
    pub discard_at: Option<i64>,
    pub max_attempts: i64,
    /// How it arrived: a webhook delivery or Stripe's events list (reconciled).
    pub origin: domain::model::Origin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    pub execution_id: String,
    /// The event id was already stored; nothing was created.
    pub duplicate: bool,
}

/// `exe_`, the creation time (9 base-36 digits of unix ms) and 15 random characters: ids sort
/// by creation, so new rows land at the end of the id index instead of on random pages.
pub fn new_execution_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut id = String::with_capacity(28);
    id.push_str("exe_");
    let mut time = [b'0'; 9];
    let mut ms = super::now_ms().max(0) as u64;
    for digit in time.iter_mut().rev() {
        *digit = ALPHABET[(ms % 36) as usize];
        ms /= 36;
    }
    id.extend(time.iter().map(|&b| b as char));
    let mut rng = rand::thread_rng();
    id.extend((0..15).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char));
    id
}

pub(super) const INSERT_EVENTS: &str = "INSERT INTO events (id, type, created, livemode, api_version, account, object_id, object_type, payload, received_at, execution_id) VALUES";

/// Binds `(event, execution id)` pairs to an `INSERT_EVENTS` statement; a macro because the
/// query type differs (rows returned or not) and so does the backend.
macro_rules! bind_events {
    ($query:expr, $pairs:expr, $now:expr) => {{
        let mut q = $query;
        for (e, execution_id) in $pairs {
            q = q
                .bind(&e.id)
                .bind(&e.event_type)
                .bind(e.created)
                .bind(e.livemode)
                .bind(&e.api_version)
                .bind(&e.account)
                .bind(&e.object_id)
                .bind(&e.object_type)
                .bind(&e.payload)
                .bind($now)
                .bind(execution_id);
        }
        q
    }};
}
pub(super) use bind_events;

/// `(event id, execution id)` of those of `ids` already stored, read in transaction `$tx`;
/// `$sql` is the driver's statement rewriter.
macro_rules! stored_executions {
    ($tx:expr, $ids:expr, $sql:expr) => {{
        let ids: Vec<&str> = $ids;
        if ids.is_empty() {
            Vec::new()
        } else {
            let sql = $sql(format!(
                "SELECT id, execution_id FROM events WHERE id IN ({})",
                $crate::store::placeholders(ids.len())
            ));
            let mut q = sqlx::query_as::<_, (String, String)>(&sql);
            for id in ids {
                q = q.bind(id);
            }
            q.fetch_all(&mut *$tx).await?
        }
    }};
}
pub(super) use stored_executions;

/// Inserts the executions of `$new` (`(&NewEvent, &execution id)` pairs) in transaction `$tx`.
macro_rules! insert_executions {
    ($tx:expr, $new:expr, $now:expr, $sql:expr) => {{
        let new: &[(&$crate::store::NewEvent, &String)] = $new;
        if !new.is_empty() {
            let sql = $sql(format!(
                "INSERT INTO executions (id, event_id, event_type, event_created, livemode, api_version, object_id, state,
                     max_attempts, created_at, scheduled_at, next_run_at, discard_at, account, origin)
                 VALUES {}",
                $crate::store::values_list(new.len(), 15, 1)
            ));
            let mut q = sqlx::query(&sql);
            for (e, execution_id) in new {
                q = q
                    .bind(*execution_id)
                    .bind(&e.id)
                    .bind(&e.event_type)
                    .bind(e.created)
                    .bind(e.livemode)
                    .bind(&e.api_version)
                    .bind(&e.object_id)
                    .bind("scheduled")
                    .bind(e.max_attempts)
                    .bind($now)
                    .bind(e.run_at)
                    .bind(e.run_at)
                    .bind(e.discard_at)
                    .bind(&e.account)
                    .bind(e.origin.as_str());
            }
            q.execute(&mut *$tx).await?;
        }
    }};
}
pub(super) use insert_executions;

/// Events per multi-row statement: 11 parameters each, far below either backend's limit.
pub(super) const CHUNK: usize = 256;

/// What a driver's ingest wrote: execution ids by event id, of the events it created and of
/// those already stored.
#[derive(Debug, Default)]
pub struct Ingested {
    pub(super) created: HashMap<String, String>,
    pub(super) existing: HashMap<String, String>,
}

impl Store {
    /// Stores a batch of events in one transaction (group commit): each new event id gets
    /// an execution, a known one answers with its existing execution. All or nothing.
    pub async fn ingest(&self, events: &[NewEvent]) -> Result<Vec<IngestOutcome>> {
        let now = super::now_ms();
        // The first delivery of each id in the batch, in id order: concurrent batches (other
        // processes) holding the same ids (Stripe retries) then wait on each other in one order
        // instead of deadlocking. Later copies in the batch are duplicates of the first.
        let mut firsts: Vec<usize> = (0..events.len()).collect();
        firsts.sort_by(|&a, &b| events[a].id.cmp(&events[b].id));
        firsts.dedup_by(|a, b| events[*a].id == events[*b].id);
        let new_ids: Vec<String> = firsts.iter().map(|_| new_execution_id()).collect();
        let Ingested { created, existing } = self.driver.ingest(events, &firsts, &new_ids, now).await?;
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            out.push(match created.get(&e.id) {
                Some(id) => IngestOutcome {
                    execution_id: id.clone(),
                    duplicate: !seen.insert(e.id.as_str()),
                },
                None => IngestOutcome {
                    // Gone between the conflict and the read: only a prune of a long-expired id does that.
                    execution_id: existing
                        .get(&e.id)
                        .cloned()
                        .ok_or_else(|| super::StoreError::Db(sqlx::Error::RowNotFound))?,
                    duplicate: true,
                },
            });
        }
        if out.iter().any(|o| !o.duplicate) {
            self.notify_due().await?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::new_execution_id;

    #[test]
    fn execution_ids_sort_by_creation_time() {
        let first = new_execution_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = new_execution_id();
        assert!(first < second, "{first} then {second}");
        assert_eq!(first.len(), 28);
        assert!(first.starts_with("exe_"));
        assert!(first[4..].bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
        assert_ne!(
            new_execution_id(),
            new_execution_id(),
            "same millisecond, different ids"
        );
    }
}
