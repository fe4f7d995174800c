//! The failure alerts' outbox (migration 0013): final failures (recorded by a trigger in the
//! failing transaction) are composed into messages, at most one per event type per digest
//! window, and each message is delivered to every receiver under a lease, with retries.

use domain::alerts::{AlertDelivery, AlertMessage, Alerts, receiver_label};

use super::{Result, Store, on_db, rfc3339};

/// What a message says, before it is formatted for the receivers.
#[derive(Debug, Clone)]
pub enum AlertDraft {
    /// One execution failed.
    Failed {
        event_type: String,
        execution_id: String,
        event_id: String,
        error: Option<String>,
    },
    /// Several failed since the type's last message.
    Digest {
        event_type: String,
        count: i64,
        latest_error: Option<String>,
    },
    /// A type that alerted has succeeded again.
    Recovered { event_type: String },
}

impl AlertDraft {
    fn kind(&self) -> &'static str {
        match self {
            AlertDraft::Failed { .. } => "failed",
            AlertDraft::Digest { .. } => "digest",
            AlertDraft::Recovered { .. } => "recovered",
        }
    }

    fn failures(&self) -> i64 {
        match self {
            AlertDraft::Failed { .. } => 1,
            AlertDraft::Digest { count, .. } => *count,
            AlertDraft::Recovered { .. } => 0,
        }
    }
}

/// Formats a draft (with its message id) into the summary text and the JSON body to post.
pub type AlertFormat = dyn Fn(&AlertDraft, i64) -> (String, String) + Send + Sync;

/// A delivery this process holds the lease on and should post now.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryJob {
    pub id: i64,
    pub receiver: String,
    pub attempts: i64,
    pub body: String,
    /// When the lease ends: past it another process may take the delivery, so the post and
    /// its recording must both be over by then.
    pub lease_expires_at: i64,
}

/// The claim of due deliveries (`$1` owner, `$2` lease end, `$3` now, `$4` limit, then the
/// `skip` receivers not to take any of); `row_lock` is how the driver keeps concurrent claims
/// apart (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite's one writer needs none).
fn claim_deliveries_sql(skip: usize, row_lock: &str) -> String {
    let skipped = if skip == 0 {
        String::new()
    } else {
        format!(" AND receiver NOT IN ({})", super::placeholders_from(skip, 5))
    };
    format!(
        "UPDATE alert_deliveries SET lease_owner = $1, lease_expires_at = $2
         WHERE id IN (SELECT id FROM alert_deliveries
                      WHERE state = 'pending' AND next_attempt_at <= $3 AND (lease_expires_at IS NULL OR lease_expires_at < $3){skipped}
                      ORDER BY id LIMIT $4{row_lock})
         RETURNING id, receiver, attempts, (SELECT m.body FROM alert_messages m WHERE m.id = message_id) AS body, lease_expires_at"
    )
}

/// Pending failures of one type: how many, the newest outbox row, the newest failed execution
/// (by arrival) and when the last of them failed.
type PendingRow = (String, i64, i64, i64, i64);
/// What a failure message reports: its newest outbox row, failed execution and failure time.
type Reported = (i64, i64, i64);
/// A type's alert state: last message, newest failed execution reported and when the last
/// failure reported finished, alerting.
type TypeRow = (String, i64, i64, i64, bool);

/// A succeeded execution of `type_expr` that recovers it: it finished after the last failure
/// reported (`at_expr`), so an earlier success of a newer execution is no recovery. It must be
/// newer than the failures too (`seq_expr`): that bounds the read to the index range of the
/// type's successes since then (`executions_finished_type`) instead of every success of the
/// type, at the cost of ignoring an older execution that succeeds late: the next newer success
/// recovers the type.
fn succeeded_since(type_expr: &str, seq_expr: &str, at_expr: &str) -> String {
    format!(
        "SELECT 1 FROM executions x WHERE x.finished_at IS NOT NULL AND x.final_state = 'succeeded'
           AND x.event_type = {type_expr} AND x.seq > {seq_expr} AND x.finished_at > {at_expr}"
    )
}

impl Store {
    /// Whether the alerter has work: failures whose type's digest window is over, an alerting
    /// type that has succeeded since, or deliveries due that no process is posting. Read on a reader, so that an idle
    /// alerter never takes the writer (SQLite's only write connection) from the executor.
    pub async fn alerts_due(&self, now: i64, window_ms: i64) -> Result<bool> {
        on_db!(&self.db, pool => Ok(sqlx::query_scalar(&format!(
            "SELECT EXISTS (SELECT 1 FROM alert_failures f WHERE f.message_id IS NULL AND NOT EXISTS (
                        SELECT 1 FROM alert_types t WHERE t.event_type = f.event_type AND t.last_message_at > $1))
                 OR EXISTS (SELECT 1 FROM alert_types t WHERE t.alerting AND EXISTS ({}))
                 OR EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.state = 'pending' AND d.next_attempt_at <= $2
                               AND (d.lease_expires_at IS NULL OR d.lease_expires_at < $2))",
            succeeded_since("t.event_type", "t.last_failure_seq", "t.last_failure_at")
        ))
        .bind(now - window_ms)
        .bind(now)
        .fetch_one(pool)
        .await?))
    }

    /// Turns pending failures into messages (per type: at most one per `window_ms`) and sends
    /// "recovered" for alerting types that succeeded since; one delivery per receiver.
    /// On PostgreSQL one process composes at a time (the others skip this round).
    /// Returns the messages composed.
    pub async fn compose_alerts(
        &self,
        now: i64,
        window_ms: i64,
        receivers: &[String],
        format: &AlertFormat,
    ) -> Result<usize> {
        let lock = self.driver.alert_compose_lock();
        on_db!(&self.writer, pool => {
            let mut tx = pool.begin_with(self.driver.begin_write()).await?;
            if let Some(lock) = lock {
                let got: bool = sqlx::query_scalar(lock).fetch_one(&mut *tx).await?;
                if !got {
                    return Ok(0);
                }
            }
            let pending: Vec<PendingRow> = sqlx::query_as(
                "SELECT event_type, COUNT(*), MAX(id), MAX(execution_seq), MAX(failed_at) FROM alert_failures
                 WHERE message_id IS NULL GROUP BY event_type ORDER BY MIN(id)",
            )
            .fetch_all(&mut *tx)
            .await?;
            // In key order: PostgreSQL's writers read through indexes only (`Store::open`).
            let types: Vec<TypeRow> =
                sqlx::query_as(
                "SELECT event_type, last_message_at, last_failure_seq, last_failure_at, alerting FROM alert_types ORDER BY event_type",
            )
                    .fetch_all(&mut *tx)
                    .await?;
            let mut drafts: Vec<(AlertDraft, Option<Reported>)> = Vec::new();
            for (event_type, count, last_id, last_seq, last_at) in pending.iter().cloned() {
                let last_message = types.iter().find(|t| t.0 == event_type).map(|t| t.1);
                if last_message.is_some_and(|at| now - at < window_ms) {
                    continue; // digested into the next message, once the window is over
                }
                // The newest pending failure: the one a single-failure message is about, and
                // the latest error of a digest.
                let (execution_id, event_id, error): (String, String, Option<String>) = sqlx::query_as(
                    "SELECT execution_id, event_id, error FROM alert_failures WHERE id = $1",
                )
                .bind(last_id)
                .fetch_one(&mut *tx)
                .await?;
                let draft = if count == 1 {
                    AlertDraft::Failed { event_type, execution_id, event_id, error }
                } else {
                    AlertDraft::Digest { event_type, count, latest_error: error }
                };
                drafts.push((draft, Some((last_id, last_seq, last_at))));
            }
            for (event_type, _, last_failure_seq, last_failure_at, alerting) in &types {
                if !alerting || pending.iter().any(|p| &p.0 == event_type) {
                    continue;
                }
                let succeeded: Option<i32> =
                    sqlx::query_scalar(&format!("{} LIMIT 1", succeeded_since("$1", "$2", "$3")))
                        .bind(event_type)
                        .bind(last_failure_seq)
                        .bind(last_failure_at)
                        .fetch_optional(&mut *tx)
                        .await?;
                if succeeded.is_some() {
                    drafts.push((AlertDraft::Recovered { event_type: event_type.clone() }, None));
                }
            }
            let composed = drafts.len();
            for (draft, reported) in drafts {
                let (event_type, failures) = match &draft {
                    AlertDraft::Failed { event_type, .. }
                    | AlertDraft::Digest { event_type, .. }
                    | AlertDraft::Recovered { event_type } => (event_type.clone(), draft.failures()),
                };
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO alert_messages (kind, event_type, failures, summary, body, created_at)
                     VALUES ($1, $2, $3, '', '', $4) RETURNING id",
                )
                .bind(draft.kind())
                .bind(&event_type)
                .bind(failures)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                let (summary, body) = format(&draft, id);
                sqlx::query("UPDATE alert_messages SET summary = $1, body = $2 WHERE id = $3")
                    .bind(summary)
                    .bind(body)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                match reported {
                    Some((last_id, last_seq, last_at)) => {
                        sqlx::query(
                            "UPDATE alert_failures SET message_id = $1 WHERE event_type = $2 AND message_id IS NULL AND id <= $3",
                        )
                        .bind(id)
                        .bind(&event_type)
                        .bind(last_id)
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query(
                            "INSERT INTO alert_types (event_type, last_message_at, last_failure_seq, last_failure_at, alerting)
                             VALUES ($1, $2, $3, $4, TRUE)
                             ON CONFLICT (event_type) DO UPDATE SET last_message_at = excluded.last_message_at, alerting = TRUE,
                                 last_failure_seq = CASE WHEN excluded.last_failure_seq > alert_types.last_failure_seq
                                                         THEN excluded.last_failure_seq ELSE alert_types.last_failure_seq END,
                                 last_failure_at = CASE WHEN excluded.last_failure_at > alert_types.last_failure_at
                                                        THEN excluded.last_failure_at ELSE alert_types.last_failure_at END",
                        )
                        .bind(&event_type)
                        .bind(now)
                        .bind(last_seq)
                        .bind(last_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    None => {
                        sqlx::query("UPDATE alert_types SET alerting = FALSE WHERE event_type = $1")
                            .bind(&event_type)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                for receiver in receivers {
                    sqlx::query(
                        "INSERT INTO alert_deliveries (message_id, receiver, state, next_attempt_at) VALUES ($1, $2, 'pending', $3)",
                    )
                    .bind(id)
                    .bind(receiver)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(composed)
        })
    }

    /// Takes up to `limit` due deliveries, none to `skip_receivers`, under a lease for `owner`:
    /// no other process sends them until the lease expires (PostgreSQL: claimers skip rows
    /// another claim has locked).
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        now: i64,
        lease_ms: i64,
        limit: i64,
        skip_receivers: &[String],
    ) -> Result<Vec<DeliveryJob>> {
        let sql = claim_deliveries_sql(skip_receivers.len(), self.driver.alert_claim_lock());
        let mut jobs: Vec<DeliveryJob> = on_db!(&self.writer, pool => {
            let mut q = sqlx::query_as(&sql).bind(owner).bind(now + lease_ms).bind(now).bind(limit);
            for r in skip_receivers {
                q = q.bind(r);
            }
            q.fetch_all(pool).await?
        });
        jobs.sort_by_key(|j| j.id);
        Ok(jobs)
    }

    /// Gives a delivery back unposted, due at once for any process.
    pub async fn release_delivery(&self, id: i64, owner: &str) -> Result<()> {
        on_db!(&self.writer, pool => sqlx::query(
            "UPDATE alert_deliveries SET lease_owner = NULL, lease_expires_at = NULL
             WHERE id = $1 AND lease_owner = $2 AND state = 'pending'",
        )
        .bind(id)
        .bind(owner)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// The receiver took the message. Only while `owner` still holds the lease.
    pub async fn delivery_sent(&self, id: i64, owner: &str, now: i64) -> Result<bool> {
        on_db!(&self.writer, pool => Ok(sqlx::query(
            "UPDATE alert_deliveries SET state = 'sent', sent_at = $1, attempts = attempts + 1, last_error = NULL,
                 lease_owner = NULL, lease_expires_at = NULL
             WHERE id = $2 AND lease_owner = $3 AND state = 'pending'",
        )
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(pool)
        .await?
        .rows_affected() == 1))
    }

    /// The receiver failed: try again at `next_at`.
    pub async fn delivery_failed(&self, id: i64, owner: &str, next_at: i64, error: &str) -> Result<()> {
        on_db!(&self.writer, pool => sqlx::query(
            "UPDATE alert_deliveries SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2,
                 lease_owner = NULL, lease_expires_at = NULL
             WHERE id = $3 AND lease_owner = $4 AND state = 'pending'",
        )
        .bind(next_at)
        .bind(error)
        .bind(id)
        .bind(owner)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Deletes messages composed before `before` whose deliveries are all done, and the failures
    /// they reported.
    pub async fn prune_alerts(&self, before: i64) -> Result<u64> {
        on_db!(&self.writer, pool => {
            let mut tx = pool.begin_with(self.driver.begin_write()).await?;
            sqlx::query("DELETE FROM alert_failures WHERE message_id IS NOT NULL AND failed_at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "DELETE FROM alert_deliveries WHERE state = 'sent' AND message_id IN (SELECT id FROM alert_messages WHERE created_at < $1)",
            )
            .bind(before)
            .execute(&mut *tx)
            .await?;
            let n = sqlx::query(
                "DELETE FROM alert_messages WHERE created_at < $1
                 AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.message_id = alert_messages.id)",
            )
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(n)
        })
    }

    /// The newest `limit` messages with their deliveries, for the console.
    pub async fn alerts(&self, limit: i64, configured: bool) -> Result<Alerts> {
        type MessageRow = (i64, String, String, i64, String, i64);
        type DeliveryRow = (i64, String, String, i64, i64, Option<i64>, Option<String>);
        on_db!(&self.db, pool => {
            let pending_failures: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alert_failures WHERE message_id IS NULL")
                .fetch_one(pool)
                .await?;
            let rows: Vec<MessageRow> = sqlx::query_as(
                "SELECT id, kind, event_type, failures, summary, created_at FROM alert_messages ORDER BY id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let oldest = rows.last().map_or(0, |r| r.0);
            let deliveries: Vec<DeliveryRow> = sqlx::query_as(
                "SELECT message_id, receiver, state, attempts, next_attempt_at, sent_at, last_error
                 FROM alert_deliveries WHERE message_id >= $1 ORDER BY id",
            )
            .bind(oldest)
            .fetch_all(pool)
            .await?;
            let messages = rows
                .into_iter()
                .map(|(id, kind, event_type, failures, summary, created_at)| AlertMessage {
                    deliveries: deliveries
                        .iter()
                        .filter(|d| d.0 == id)
                        .map(|(_, receiver, state, attempts, next, sent_at, last_error)| AlertDelivery {
                            receiver: receiver_label(receiver),
                            next_attempt_at: (state == "pending").then(|| rfc3339(*next)),
                            state: state.clone(),
                            attempts: *attempts,
                            sent_at: sent_at.map(rfc3339),
                            last_error: last_error.clone(),
                        })
                        .collect(),
                    id,
                    kind,
                    event_type,
                    failures,
                    summary,
                    created_at: rfc3339(created_at),
                })
                .collect();
            Ok(Alerts { configured, pending_failures, messages })
        })
    }
}
