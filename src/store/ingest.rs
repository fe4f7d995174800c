//! Storing verified events: one execution per Stripe event id, in the same transaction.

use super::{Result, Store, on_db};

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    pub execution_id: String,
    /// The event id was already stored; nothing was created.
    pub duplicate: bool,
}

/// `exe_` and 24 random characters.
pub fn new_execution_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let tail: String = (0..24)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("exe_{tail}")
}

const INSERT_EVENT: &str = "INSERT INTO events (id, type, created, livemode, api_version, account, object_id, object_type, payload, received_at, execution_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING";
const EXISTING: &str = "SELECT execution_id FROM events WHERE id = $1";
pub(super) const INSERT_EXECUTION: &str = "INSERT INTO executions (id, event_id, event_type, event_created, livemode, api_version, object_id, state, max_attempts, created_at, scheduled_at, next_run_at, discard_at, rerun_of)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'scheduled', $8, $9, $10, $10, $11, $12)";

impl Store {
    /// Stores a batch of events in one transaction (group commit): each new event id gets
    /// an execution, a known one answers with its existing execution. All or nothing.
    pub async fn ingest(&self, events: &[NewEvent]) -> Result<Vec<IngestOutcome>> {
        let now = super::now_ms();
        let turn = self.write_turn().await;
        let out = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            // In event id order: concurrent batches (other processes) holding the same ids
            // (Stripe retries) then wait on each other in one order instead of deadlocking.
            let mut order: Vec<usize> = (0..events.len()).collect();
            order.sort_by(|&a, &b| events[a].id.cmp(&events[b].id));
            let mut out = vec![None; events.len()];
            for i in order {
                let e = &events[i];
                let execution_id = new_execution_id();
                let inserted = sqlx::query(INSERT_EVENT)
                    .bind(&e.id)
                    .bind(&e.event_type)
                    .bind(e.created)
                    .bind(e.livemode)
                    .bind(&e.api_version)
                    .bind(&e.account)
                    .bind(&e.object_id)
                    .bind(&e.object_type)
                    .bind(&e.payload)
                    .bind(now)
                    .bind(&execution_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if inserted {
                    sqlx::query(INSERT_EXECUTION)
                        .bind(&execution_id)
                        .bind(&e.id)
                        .bind(&e.event_type)
                        .bind(e.created)
                        .bind(e.livemode)
                        .bind(&e.api_version)
                        .bind(&e.object_id)
                        .bind(e.max_attempts)
                        .bind(now)
                        .bind(e.run_at)
                        .bind(e.discard_at)
                        .bind(None::<String>)
                        .execute(&mut *tx)
                        .await?;
                    out[i] = Some(IngestOutcome { execution_id, duplicate: false });
                } else {
                    let (existing,): (String,) = sqlx::query_as(EXISTING).bind(&e.id).fetch_one(&mut *tx).await?;
                    out[i] = Some(IngestOutcome { execution_id: existing, duplicate: true });
                }
            }
            tx.commit().await?;
            out.into_iter().map(|o| o.expect("every event has an outcome")).collect::<Vec<_>>()
        });
        drop(turn);
        if out.iter().any(|o| !o.duplicate) {
            self.notify_due().await?;
        }
        Ok(out)
    }
}
