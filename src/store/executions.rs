//! Executions and their attempts: the executor's transitions and the operators' reads.

use domain::model::{Attempt, Cursor, Execution, ExecutionFilter, Origin, State};

use super::{Result, Store, dialect, now_ms, on_db, placeholders, placeholders_from, values_list};

/// Binds filter arguments in order; a macro because the query type differs per backend.
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for a in $args {
            q = match a {
                Arg::Int(i) => q.bind(*i),
                Arg::Text(t) => q.bind(t.clone()),
                Arg::Bool(b) => q.bind(*b),
            };
        }
        q
    }};
}
pub(super) use bind_args;

/// An execution row as stored.
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct ExecutionRow {
    pub seq: i64,
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub event_created: i64,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub object_id: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub created_at: i64,
    pub scheduled_at: i64,
    /// When due. Kept while running (the time it was due); cleared once finished.
    pub next_run_at: Option<i64>,
    pub discard_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub last_error: Option<String>,
    pub result: Option<String>,
    pub source: Option<String>,
    pub rerun_of: Option<String>,
    /// `webhook`, `reconciled` or `rerun` (migration 0010).
    pub origin: String,
    /// The Connect account of the event (`acct_…`), for connected accounts' events.
    pub account: Option<String>,
}

/// The columns of `ExecutionRow`, as a literal so that `concat!` can extend it.
macro_rules! execution_columns {
    () => {
        "seq, id, event_id, event_type, event_created, livemode, api_version, object_id, state, attempts, max_attempts, created_at, scheduled_at, next_run_at, discard_at, started_at, finished_at, last_error, result, source, rerun_of, origin, account"
    };
}

pub(super) const COLUMNS: &str = execution_columns!();

/// A column of the claimed execution's event, as a scalar subquery (`event_id` is the row's).
macro_rules! event_column {
    ($column:literal) => {
        concat!("(SELECT ev.", $column, " FROM events ev WHERE ev.id = event_id)")
    };
}
pub(super) use event_column;

/// What a claim returns: the row, and its event's stored payload, read in the same statement
/// (a scalar subquery in `RETURNING`; `event_id` is the claimed row's).
pub(super) const CLAIMED_COLUMNS: &str = concat!(execution_columns!(), ", ", event_column!("payload"), " AS payload");

#[derive(sqlx::FromRow, serde::Deserialize)]
pub(super) struct ClaimedRow {
    #[sqlx(flatten)]
    row: ExecutionRow,
    payload: Option<String>,
}

/// A running execution's lease, as the rescuer reads it: id, attempts, max attempts,
/// when the attempt started, and who held it.
type LeaseRow = (String, i64, i64, Option<i64>, Option<String>);

/// An execution a worker has claimed, with what its handler needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub row: ExecutionRow,
    pub payload: String,
    pub account: Option<String>,
}

impl From<ClaimedRow> for Claimed {
    fn from(c: ClaimedRow) -> Self {
        Claimed {
            account: c.row.account.clone(),
            row: c.row,
            payload: c.payload.unwrap_or_default(),
        }
    }
}

/// What a heartbeat renewed.
#[derive(Debug, Default)]
pub struct Renewed {
    /// The executions whose lease now runs a full lease from now.
    pub ids: Vec<String>,
    /// Those of them an operator asked to cancel.
    pub cancel: Vec<String>,
}

/// How an attempt ended, as the executor decided.
#[derive(Debug, Clone)]
pub enum Finish {
    Succeeded {
        result: String,
        source: Option<String>,
    },
    /// Try again at `at` (unix ms).
    Retry {
        at: i64,
        kind: &'static str,
        message: String,
    },
    /// No more tries: attempts exhausted or a permanent error.
    Failed {
        kind: &'static str,
        message: String,
    },
    /// Cancelled by an operator while running.
    Aborted,
    /// Shutdown came first: back to `scheduled`, the attempt not counted.
    Released,
    /// Not tried (no Stripe budget now): back to `scheduled` until `at` (unix ms), the attempt
    /// not counted and not recorded.
    Postponed {
        at: i64,
    },
}

impl Finish {
    /// Whether a text it stores (the handler's result and source, or the error message) holds
    /// a NUL character. Checked for every completion, so without allocating.
    fn has_nul(&self) -> bool {
        let nul = |s: &str| s.contains('\0');
        match self {
            Finish::Succeeded { result, source } => nul(result) || source.as_deref().is_some_and(nul),
            Finish::Retry { message, .. } | Finish::Failed { message, .. } => nul(message),
            Finish::Aborted | Finish::Released | Finish::Postponed { .. } => false,
        }
    }

    /// PostgreSQL refuses a text holding a NUL character, and the batch with it: a handler's
    /// message (quoting a response body, say) must not stop every completion behind it.
    fn without_nul(&self) -> Finish {
        let clean = |s: &String| s.replace('\0', "\u{FFFD}");
        match self {
            Finish::Succeeded { result, source } => Finish::Succeeded {
                result: clean(result),
                source: source.as_ref().map(clean),
            },
            Finish::Retry { at, kind, message } => Finish::Retry {
                at: *at,
                kind,
                message: clean(message),
            },
            Finish::Failed { kind, message } => Finish::Failed {
                kind,
                message: clean(message),
            },
            other => other.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Completion {
    pub execution_id: String,
    pub attempt: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub duration_us: i64,
    pub finish: Finish,
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    number: i64,
    started_at: i64,
    finished_at: i64,
    duration_us: i64,
    outcome: String,
    error_kind: Option<String>,
    error_message: Option<String>,
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl ExecutionRow {
    pub fn state(&self) -> State {
        self.state.parse().unwrap_or(State::Failed)
    }

    /// The stored origin; the column's CHECK admits only the three.
    pub fn origin(&self) -> Origin {
        self.origin.parse().unwrap_or(Origin::Webhook)
    }

    pub fn to_view(&self, duration_us: Option<i64>) -> Execution {
        Execution {
            id: self.id.clone(),
            state: self.state(),
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            livemode: self.livemode,
            api_version: self.api_version.clone(),
            object_id: self.object_id.clone(),
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            created_at: rfc3339(self.created_at),
            scheduled_at: rfc3339(self.scheduled_at),
            // Kept while running (the time it was due, see `SET_RUNNING`); only a scheduled one has a next run.
            next_run_at: self
                .next_run_at
                .filter(|_| self.state() == State::Scheduled)
                .map(rfc3339),
            started_at: self.started_at.map(rfc3339),
            finished_at: self.finished_at.map(rfc3339),
            duration_ms: duration_us.map(|us| us as f64 / 1000.0),
            last_error: self.last_error.clone(),
            result: self.result.clone(),
            source: self.source.clone(),
            rerun_of: self.rerun_of.clone(),
            origin: self.origin(),
            account: self.account.clone(),
        }
    }
}

/// Why an operator's action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no execution `{0}`")]
    NotFound(String),
    #[error("cannot {action}: the execution is {state}")]
    Refused { action: &'static str, state: State },
    #[error(transparent)]
    Store(#[from] super::StoreError),
}

impl Store {
    /// Claims up to `limit` due executions for `owner`, oldest first, one per Stripe object
    /// at a time and in the order of the events' `created`.
    pub async fn claim(&self, owner: &str, limit: i64, lease_ms: i64, skip_types: &[String]) -> Result<Vec<Claimed>> {
        let now = now_ms();
        let rows = dialect::claim(&self.writer, owner, now, now + lease_ms, limit, skip_types).await?;
        Ok(rows.into_iter().map(Claimed::from).collect())
    }

    /// Whether executions are due that a claim could start now (types in `skip_types` left out).
    pub async fn claimable_exists(&self, skip_types: &[String]) -> Result<bool> {
        // As `next_due_at`: SQLite reads beside the single writer, not behind it.
        let db = if dialect::single_writer(&self.db) {
            &self.db
        } else {
            &self.writer
        };
        dialect::claimable_exists(db, now_ms(), skip_types).await
    }

    /// Claims for types with a concurrency limit: at most `limit - running` of `event_type`,
    /// and at most `max` (the workers free to run them).
    pub async fn claim_limited(
        &self,
        owner: &str,
        event_type: &str,
        type_limit: i64,
        lease_ms: i64,
        max: i64,
    ) -> Result<Vec<Claimed>> {
        let now = now_ms();
        let rows = dialect::claim_type(&self.writer, owner, now, now + lease_ms, event_type, type_limit, max).await?;
        Ok(rows.into_iter().map(Claimed::from).collect())
    }

    /// Records finished attempts: the attempt rows, then the executions, in one transaction. A
    /// completion whose lease was lost (rescued meanwhile, even if claimed again by this same
    /// owner: the attempt number differs then) changes nothing. Returns how many applied.
    ///
    /// SQLite: two multi-row statements per chunk, neither returning rows (each returned row
    /// is a hand-off between threads, which cost more than the rest of the completion).
    /// PostgreSQL: one statement over arrays (`dialect::pg_complete`).
    pub async fn complete(&self, owner: &str, batch: &[Completion]) -> Result<u64> {
        let batch: std::borrow::Cow<[Completion]> = if batch.iter().any(|c| c.finish.has_nul()) {
            batch
                .iter()
                .map(|c| Completion {
                    finish: c.finish.without_nul(),
                    ..c.clone()
                })
                .collect()
        } else {
            batch.into()
        };
        let rows: Vec<CompletionRow> = batch.iter().map(CompletionRow::from).collect();
        let pool = match &self.writer {
            super::Db::Postgres(pool) => return dialect::pg_complete(pool, owner, &rows).await,
            super::Db::Sqlite(pool) => pool,
        };
        let mut tx = pool.begin_with(self.writer.begin_write()).await?;
        let mut applied = 0;
        for chunk in rows.chunks(COMPLETION_CHUNK) {
            // Attempts first, while the lease still says whose they are.
            let owner_param = chunk.len() * 8 + 1;
            let sql = self.writer.sql(format!(
                "INSERT INTO attempts (execution_id, number, started_at, finished_at, duration_us, outcome, error_kind, error_message, worker)
                 SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, x.lease_owner
                 FROM (VALUES {}) AS v
                 JOIN executions x ON x.id = v.column1 AND x.attempts = v.column2
                 WHERE v.column6 IS NOT NULL AND x.lease_owner = ${owner_param} AND x.state = 'running'
                 ON CONFLICT DO NOTHING",
                values_list(chunk.len(), 8, 1)
            ));
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(r.id)
                    .bind(r.attempt)
                    .bind(r.started_at)
                    .bind(r.ended_at)
                    .bind(r.duration_us)
                    .bind(r.outcome)
                    .bind(r.kind)
                    .bind(r.message);
            }
            q.bind(owner).execute(&mut *tx).await?;

            let owner_param = chunk.len() * 9 + 1;
            let sql = self.writer.sql(format!(
                "UPDATE executions SET state = v.column2, next_run_at = v.column3, finished_at = v.column4,
                     last_error = COALESCE(v.column5, executions.last_error),
                     result = COALESCE(v.column6, executions.result),
                     source = COALESCE(v.column7, executions.source),
                     attempts = executions.attempts - v.column8,
                     lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE
                 FROM (VALUES {}) AS v
                 WHERE executions.id = v.column1 AND executions.attempts = v.column9
                   AND executions.lease_owner = ${owner_param} AND executions.state = 'running'",
                values_list(chunk.len(), 9, 1)
            ));
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(r.id)
                    .bind(r.state)
                    .bind(r.next_run_at)
                    .bind(r.finished_at)
                    .bind(r.last_error)
                    .bind(r.result)
                    .bind(r.source)
                    .bind(r.uncount)
                    .bind(r.attempt);
            }
            applied += q.bind(owner).execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// Renews `owner`'s leases on the executions it is `running` right now (and only those:
    /// one claimed but never started, e.g. the connection broke before its payload was read,
    /// expires and is rescued); answers the ids renewed, and those of them an operator asked
    /// to cancel.
    pub async fn heartbeat(&self, owner: &str, running: &[String], lease_ms: i64) -> Result<Renewed> {
        let until = now_ms() + lease_ms;
        let lock = dialect::skip_locked(&self.writer);
        let mut renewed = Renewed::default();
        for chunk in running.chunks(500) {
            let ids = placeholders_from(chunk.len(), 3);
            let sql = self.writer.sql(format!(
                "UPDATE executions SET lease_expires_at = $1 WHERE seq IN (SELECT seq FROM executions
                 WHERE lease_owner = $2 AND state = 'running' AND id IN ({ids}){lock})
                 RETURNING id, cancel_requested"
            ));
            let rows: Vec<(String, bool)> = on_db!(&self.writer, pool => {
                let mut q = sqlx::query_as(&sql).bind(until).bind(owner);
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(pool).await?
            });
            for (id, cancel) in rows {
                if cancel {
                    renewed.cancel.push(id.clone());
                }
                renewed.ids.push(id);
            }
        }
        Ok(renewed)
    }

    /// Puts executions whose lease expired (their worker died) back to `scheduled`, recording
    /// the lost attempt; those out of attempts fail. Returns the rescued ids.
    pub async fn rescue(&self) -> Result<Vec<String>> {
        let now = now_ms();
        on_db!(&self.writer, pool => {
            let mut tx = pool.begin_with(self.writer.begin_write()).await?;
            // SQLite has a lease index; on PostgreSQL it would keep claims from being HOT
            // (migration 0005), so this walks the unfinished rows there.
            let expired: Vec<LeaseRow> = sqlx::query_as(&format!(
                "SELECT id, attempts, max_attempts, started_at, lease_owner FROM executions {}
                 WHERE finished_at IS NULL AND state = 'running' AND lease_expires_at < $1 ORDER BY seq LIMIT 1000{}",
                dialect::index_hint(&self.writer, "executions_lease_expiry"),
                dialect::skip_locked(&self.writer)
            ))
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            let message = "lease expired: the worker running this attempt stopped";
            let mut rescued = Vec::with_capacity(expired.len());
            for (id, attempts, max_attempts, started_at, owner) in expired {
                let (state, next) = if attempts >= max_attempts { ("failed", None) } else { ("scheduled", Some(now)) };
                let changed = sqlx::query(
                    "UPDATE executions SET state = $1, next_run_at = $2, finished_at = $3, last_error = $4,
                         lease_owner = NULL, lease_expires_at = NULL
                     WHERE id = $5 AND state = 'running' AND lease_expires_at < $6",
                )
                .bind(state)
                .bind(next)
                .bind(next.is_none().then_some(now))
                .bind(message)
                .bind(&id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed == 1 {
                    let started = started_at.unwrap_or(now);
                    sqlx::query(
                        "INSERT INTO attempts (execution_id, number, started_at, finished_at, duration_us, outcome, error_kind, error_message, worker)
                         VALUES ($1, $2, $3, $4, $5, 'lost', 'lost', $6, $7) ON CONFLICT DO NOTHING",
                    )
                    .bind(&id)
                    .bind(attempts)
                    .bind(started)
                    .bind(now)
                    .bind((now - started) * 1000)
                    .bind(message)
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
                    rescued.push(id);
                }
            }
            tx.commit().await?;
            Ok(rescued)
        })
    }

    /// Scheduled executions never started before their deadline become `discarded`; those held
    /// by a paused type wait (their deadline moves when it resumes).
    pub async fn discard_overdue(&self) -> Result<u64> {
        let now = now_ms();
        on_db!(&self.writer, pool => Ok(sqlx::query(&format!(
            "UPDATE executions SET state = 'discarded', next_run_at = NULL, finished_at = $1,
                 last_error = 'not started before its deadline'
             WHERE finished_at IS NULL AND discard_at IS NOT NULL AND discard_at < $1 AND state = 'scheduled' AND attempts = 0
               AND {}",
            super::pauses::not_paused("executions.event_type")
        ))
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()))
    }

    /// Deletes up to `batch` finished executions older than `before` (with their attempts),
    /// then the events no execution uses any more that are older too. Returns executions deleted.
    pub async fn prune(&self, before: i64, batch: i64) -> Result<u64> {
        on_db!(&self.writer, pool => {
            let mut tx = pool.begin_with(self.writer.begin_write()).await?;
            let ids: Vec<(String,)> = sqlx::query_as(
                "SELECT id FROM executions WHERE finished_at IS NOT NULL AND finished_at < $1
                   AND state IN ('succeeded', 'failed', 'cancelled', 'discarded') LIMIT $2",
            )
            .bind(before)
            .bind(batch)
            .fetch_all(&mut *tx)
            .await?;
            for (id,) in &ids {
                sqlx::query("DELETE FROM attempts WHERE execution_id = $1").bind(id).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM executions WHERE id = $1").bind(id).execute(&mut *tx).await?;
            }
            // An event stays while Stripe still lists it (30 days after `created`): it is the
            // dedupe key that keeps the reconciler from ingesting it again.
            sqlx::query(
                "DELETE FROM events WHERE id IN (SELECT ev.id FROM events ev WHERE ev.received_at < $1
                   AND ev.created < $3
                   AND NOT EXISTS (SELECT 1 FROM executions x WHERE x.event_id = ev.id) LIMIT $2)",
            )
            .bind(before)
            .bind(batch)
            .bind(now_ms() / 1000 - super::sweeps::STRIPE_LISTS_EVENTS_FOR.as_secs() as i64)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(ids.len() as u64)
        })
    }

    /// When the next scheduled execution falls due, if any is waiting in the future.
    pub async fn next_due_at(&self) -> Result<Option<i64>> {
        let now = now_ms();
        // PostgreSQL: on the writers' pool, planned for the due index's plain scan (`Store::open`).
        // SQLite: a reader, so idle workers' polls do not queue behind the single writer.
        let db = if dialect::single_writer(&self.db) {
            &self.db
        } else {
            &self.writer
        };
        on_db!(db, pool => {
            let (at,): (Option<i64>,) = sqlx::query_as(
                "SELECT MIN(next_run_at) FROM executions WHERE finished_at IS NULL AND next_run_at > $1 AND state = 'scheduled'",
            )
            .bind(now)
            .fetch_one(pool)
            .await?;
            Ok(at)
        })
    }

    /// Due but not started: how many, and since when the oldest has waited (unix ms). Executions
    /// held by a paused type are not due (issue 18).
    pub async fn backlog(&self) -> Result<(i64, Option<i64>)> {
        let now = now_ms();
        on_db!(&self.db, pool => Ok(sqlx::query_as(&format!(
            "SELECT COUNT(*), MIN(next_run_at) FROM executions WHERE finished_at IS NULL AND next_run_at <= $1 AND state = 'scheduled'
               AND {}",
            super::pauses::not_paused("executions.event_type")
        ))
        .bind(now)
        .fetch_one(pool)
        .await?))
    }

    /// Executions per state, for metrics.
    pub async fn count_by_state(&self) -> Result<Vec<(String, i64)>> {
        // In two parts, each walking its own partial index (0004) rather than the table.
        on_db!(&self.db, pool => Ok(sqlx::query_as(
            "SELECT final_state, COUNT(*) FROM executions WHERE finished_at IS NOT NULL GROUP BY final_state
             UNION ALL SELECT state, COUNT(*) FROM executions WHERE finished_at IS NULL GROUP BY state",
        )
        .fetch_all(pool)
        .await?))
    }

    pub async fn execution(&self, id: &str) -> Result<Option<ExecutionRow>> {
        let sql = format!("SELECT {COLUMNS} FROM executions WHERE id = $1");
        on_db!(&self.db, pool => Ok(sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?))
    }

    pub async fn attempts(&self, execution_id: &str) -> Result<Vec<Attempt>> {
        let rows: Vec<AttemptRow> = on_db!(&self.db, pool => sqlx::query_as(
            "SELECT number, started_at, finished_at, duration_us, outcome, error_kind, error_message
             FROM attempts WHERE execution_id = $1 ORDER BY number",
        )
        .bind(execution_id)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|a| Attempt {
                number: a.number,
                started_at: rfc3339(a.started_at),
                finished_at: rfc3339(a.finished_at),
                duration_ms: a.duration_us as f64 / 1000.0,
                outcome: a.outcome,
                error_kind: a.error_kind,
                error_message: a.error_message,
            })
            .collect())
    }

    /// The stored payload of an event.
    pub async fn event_payload(&self, event_id: &str) -> Result<Option<String>> {
        on_db!(&self.db, pool => {
            let row: Option<(String,)> = sqlx::query_as("SELECT payload FROM events WHERE id = $1")
                .bind(event_id)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|(p,)| p))
        })
    }

    /// Executions created by re-running `id`.
    pub async fn reruns(&self, id: &str) -> Result<Vec<String>> {
        on_db!(&self.db, pool => {
            let rows: Vec<(String,)> = sqlx::query_as("SELECT id FROM executions WHERE rerun_of = $1 ORDER BY seq")
                .bind(id)
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(|(id,)| id).collect())
        })
    }

    /// Duration of each execution's latest attempt, in µs.
    pub async fn last_durations(&self, ids: &[&str]) -> Result<std::collections::HashMap<String, i64>> {
        let mut out = std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let in_ids = placeholders(ids.len());
        let sql = self.db.sql(format!(
            "SELECT a.execution_id, a.duration_us FROM attempts a JOIN executions x ON x.id = a.execution_id
             WHERE a.execution_id IN ({in_ids}) AND a.number = x.attempts"
        ));
        let rows: Vec<(String, i64)> = on_db!(&self.db, pool => {
            let mut q = sqlx::query_as(&sql);
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(pool).await?
        });
        out.extend(rows);
        Ok(out)
    }

    /// Rows as the API and console show them, with each one's latest attempt duration.
    pub async fn views(&self, rows: &[ExecutionRow]) -> Result<Vec<Execution>> {
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let durations = self.last_durations(&ids).await?;
        Ok(rows.iter().map(|r| r.to_view(durations.get(&r.id).copied())).collect())
    }

    /// One page of executions matching `filter`, newest first.
    pub async fn list(&self, filter: &ExecutionFilter) -> Result<(Vec<ExecutionRow>, bool)> {
        let limit = filter.page_size() as i64;
        let (where_sql, args) = filter_sql(&self.db, filter, true)?;
        let newer = matches!(filter.cursor, Some(Cursor::After(_)));
        let order = if newer { "ASC" } else { "DESC" };
        let sql = format!(
            "SELECT {COLUMNS} FROM executions WHERE {where_sql} ORDER BY seq {order} LIMIT {}",
            limit + 1
        );
        let mut rows: Vec<ExecutionRow> = on_db!(&self.db, pool => {
            bind_args!(sqlx::query_as(&sql), &args).fetch_all(pool).await?
        });
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        if newer {
            rows.reverse();
        }
        Ok((rows, more))
    }

    /// Counts per state for `filter`, bounded at `cap` per state so a huge table stays fast.
    pub async fn count_states(&self, filter: &ExecutionFilter, cap: i64) -> Result<Vec<(State, i64)>> {
        let mut out = Vec::new();
        let states: Vec<State> = if filter.statuses.is_empty() {
            State::ALL.to_vec()
        } else {
            filter.statuses.clone()
        };
        for state in states {
            let f = ExecutionFilter {
                statuses: vec![state],
                cursor: None,
                ..filter.clone()
            };
            let (where_sql, args) = filter_sql(&self.db, &f, false)?;
            let sql =
                format!("SELECT COUNT(*) FROM (SELECT 1 FROM executions WHERE {where_sql} LIMIT {cap}) AS capped");
            let (n,): (i64,) = on_db!(&self.db, pool => {
                bind_args!(sqlx::query_as(&sql), &args).fetch_one(pool).await?
            });
            out.push((state, n));
        }
        Ok(out)
    }

    /// Event types and API versions present, for the filter form.
    pub async fn facets(&self) -> Result<(Vec<String>, Vec<String>)> {
        on_db!(&self.db, pool => {
            let types: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT event_type FROM executions ORDER BY 1").fetch_all(pool).await?;
            let versions: Vec<(String,)> = sqlx::query_as(
                "SELECT DISTINCT api_version FROM executions WHERE api_version IS NOT NULL ORDER BY 1",
            )
            .fetch_all(pool)
            .await?;
            Ok((types.into_iter().map(|t| t.0).collect(), versions.into_iter().map(|v| v.0).collect()))
        })
    }

    /// Operator actions. Refused ones change nothing.
    pub async fn act(&self, id: &str, action: domain::model::Action) -> Result<ExecutionRow, ActionError> {
        use domain::model::Action;
        let now = now_ms();
        let row = self
            .execution(id)
            .await?
            .ok_or_else(|| ActionError::NotFound(id.to_string()))?;
        let refused = |state| ActionError::Refused {
            action: action.as_str(),
            state,
        };
        let changed = match action {
            Action::Retry => on_db!(&self.writer, pool => sqlx::query(
                "UPDATE executions SET next_run_at = $1 WHERE id = $2 AND state = 'scheduled'",
            ).bind(now).bind(id).execute(pool).await.map_err(super::StoreError::from)?.rows_affected()),
            Action::Cancel => on_db!(&self.writer, pool => sqlx::query(
                "UPDATE executions SET
                     state = CASE WHEN state = 'scheduled' THEN 'cancelled' ELSE state END,
                     next_run_at = CASE WHEN state = 'scheduled' THEN NULL ELSE next_run_at END,
                     finished_at = CASE WHEN state = 'scheduled' THEN $1 ELSE finished_at END,
                     last_error = CASE WHEN state = 'scheduled' THEN 'cancelled by an operator' ELSE last_error END,
                     cancel_requested = (state = 'running')
                 WHERE id = $2 AND state IN ('scheduled', 'running')",
            ).bind(now).bind(id).execute(pool).await.map_err(super::StoreError::from)?.rows_affected()),
            Action::Rerun => {
                if !row.state().is_final() {
                    return Err(refused(row.state()));
                }
                let new_id = super::ingest::new_execution_id();
                let max_attempts = row.max_attempts;
                on_db!(&self.writer, pool => sqlx::query(super::ingest::INSERT_RERUN)
                    .bind(&new_id)
                    .bind(&row.event_id)
                    .bind(&row.event_type)
                    .bind(row.event_created)
                    .bind(row.livemode)
                    .bind(&row.api_version)
                    .bind(&row.object_id)
                    .bind(max_attempts)
                    .bind(now)
                    .bind(now)
                    .bind(None::<i64>)
                    .bind(&row.id)
                    .bind(&row.account)
                    .execute(pool)
                    .await
                    .map(|_| ())
                    .map_err(super::StoreError::from)?);
                self.notify_due().await?;
                return self.execution(&new_id).await?.ok_or(ActionError::NotFound(new_id));
            }
        };
        if changed == 0 {
            let state = self.execution(id).await?.map_or(row.state(), |r| r.state());
            return Err(refused(state));
        }
        self.execution(id)
            .await?
            .ok_or_else(|| ActionError::NotFound(id.to_string()))
    }
}

pub(super) enum Arg {
    Int(i64),
    Text(String),
    Bool(bool),
}

/// Parses a `from`/`to` bound: RFC 3339, or `YYYY-MM-DDTHH:MM[:SS]` / `YYYY-MM-DD` in UTC.
pub fn parse_time_bound(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

/// The WHERE clause for a filter, with its arguments in placeholder order.
fn filter_sql(db: &super::Db, f: &ExecutionFilter, with_cursor: bool) -> Result<(String, Vec<Arg>)> {
    // Which part of the table the states live in, so the partial indexes of that part
    // (migration 0004) can serve: the states are bound parameters, which the planner cannot read.
    let any_state = f.statuses.is_empty();
    let finished = !any_state && f.statuses.iter().all(|s| s.is_final());
    let unfinished = !any_state && !f.statuses.iter().any(|s| s.is_final());
    // Unfinished executions (the backlog) are few next to the table: walking their own indexes
    // beats a whole-table index on livemode, API version or time that most rows share.
    let column = |name: &str| {
        if unfinished {
            dialect::not_indexed(db, name)
        } else {
            name.to_string()
        }
    };
    let (livemode, api_version, created_at) = (column("livemode"), column("api_version"), column("created_at"));
    let mut clauses: Vec<String> = vec!["1 = 1".into()];
    if finished {
        clauses.push("finished_at IS NOT NULL".into());
    } else if unfinished {
        clauses.push("finished_at IS NULL".into());
    }
    let mut args: Vec<Arg> = Vec::new();
    let mut push = |clause: &dyn Fn(usize) -> String, arg: Arg| {
        args.push(arg);
        clauses.push(clause(args.len()));
    };
    if let Some(l) = f.livemode {
        push(&|i| format!("{livemode} = ${i}"), Arg::Bool(l));
    }
    if let Some(v) = &f.api_version {
        push(&|i| format!("{api_version} = ${i}"), Arg::Text(v.clone()));
    }
    if let Some(a) = &f.account {
        push(&|i| format!("account = ${i}"), Arg::Text(a.clone()));
    }
    if let Some(q) = &f.q {
        // One placeholder used three times keeps the arguments simple.
        push(
            &|i| format!("(id = ${i} OR event_id = ${i} OR object_id = ${i})"),
            Arg::Text(q.clone()),
        );
    }
    let bound = |s: &Option<String>| -> Result<Option<i64>> {
        s.as_deref()
            .map(|v| {
                parse_time_bound(v)
                    .ok_or_else(|| super::StoreError::Db(sqlx::Error::Protocol(format!("invalid time `{v}`"))))
            })
            .transpose()
    };
    if let Some(from) = bound(&f.from)? {
        push(&|i| format!("{created_at} >= ${i}"), Arg::Int(from));
    }
    if let Some(to) = bound(&f.to)? {
        push(&|i| format!("{created_at} < ${i}"), Arg::Int(to));
    }
    if with_cursor {
        match f.cursor {
            Some(Cursor::Before(seq)) => push(&|i| format!("seq < ${i}"), Arg::Int(seq)),
            Some(Cursor::After(seq)) => push(&|i| format!("seq > ${i}"), Arg::Int(seq)),
            None => {}
        }
    }
    let in_list = |col: &str, values: Vec<String>, clauses: &mut Vec<String>, args: &mut Vec<Arg>| {
        if values.is_empty() {
            return;
        }
        clauses.push(format!(
            "{col} IN ({})",
            placeholders_from(values.len(), args.len() + 1)
        ));
        args.extend(values.into_iter().map(Arg::Text));
    };
    in_list("event_type", f.types.clone(), &mut clauses, &mut args);
    in_list(
        "origin",
        f.origins.iter().map(|o| o.to_string()).collect(),
        &mut clauses,
        &mut args,
    );
    if !f.origins.is_empty() && !f.origins.contains(&Origin::Webhook) {
        // Written out so the planner sees the condition of the partial index `executions_origin`
        // (0010): bound values it cannot read.
        clauses.push("origin <> 'webhook'".into());
    }
    // Finished rows' indexes are keyed by `final_state` (0005), which equals `state` there.
    in_list(
        if finished { "final_state" } else { "state" },
        f.statuses.iter().map(|s| s.to_string()).collect(),
        &mut clauses,
        &mut args,
    );
    Ok((clauses.join(" AND "), args))
}

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's bind-parameter limits.
const COMPLETION_CHUNK: usize = 512;

/// A completion as the columns it writes.
pub(super) struct CompletionRow<'a> {
    pub(super) id: &'a str,
    pub(super) state: &'static str,
    pub(super) next_run_at: Option<i64>,
    pub(super) finished_at: Option<i64>,
    pub(super) last_error: Option<&'a str>,
    pub(super) result: Option<&'a str>,
    pub(super) source: Option<&'a str>,
    /// 1 when the attempt is given back (released at shutdown), else 0.
    pub(super) uncount: i64,
    /// The attempt row's outcome; none for a released attempt.
    pub(super) outcome: Option<&'static str>,
    pub(super) kind: Option<&'a str>,
    pub(super) message: Option<&'a str>,
    pub(super) attempt: i64,
    pub(super) started_at: i64,
    pub(super) ended_at: i64,
    pub(super) duration_us: i64,
}

const ABORTED: &str = "cancelled by an operator while running";

impl<'a> From<&'a Completion> for CompletionRow<'a> {
    fn from(c: &'a Completion) -> Self {
        let mut row = CompletionRow {
            id: &c.execution_id,
            state: "scheduled",
            next_run_at: None,
            finished_at: None,
            last_error: None,
            result: None,
            source: None,
            uncount: 0,
            outcome: None,
            kind: None,
            message: None,
            attempt: c.attempt,
            started_at: c.started_at,
            ended_at: c.finished_at,
            duration_us: c.duration_us,
        };
        match &c.finish {
            Finish::Succeeded { result, source } => {
                row.state = "succeeded";
                row.finished_at = Some(c.finished_at);
                row.result = Some(result.as_str());
                row.source = source.as_deref();
                row.outcome = Some("succeeded");
            }
            Finish::Retry { at, kind, message } => {
                row.next_run_at = Some(*at);
                row.last_error = Some(message.as_str());
                (row.outcome, row.kind, row.message) = (Some("error"), Some(*kind), Some(message.as_str()));
            }
            Finish::Failed { kind, message } => {
                row.state = "failed";
                row.finished_at = Some(c.finished_at);
                row.last_error = Some(message.as_str());
                (row.outcome, row.kind, row.message) = (Some("error"), Some(*kind), Some(message.as_str()));
            }
            Finish::Aborted => {
                row.state = "cancelled";
                row.finished_at = Some(c.finished_at);
                row.last_error = Some(ABORTED);
                (row.outcome, row.kind, row.message) = (Some("aborted"), Some("aborted"), Some(ABORTED));
            }
            Finish::Released => {
                row.next_run_at = Some(c.finished_at);
                row.uncount = 1;
            }
            Finish::Postponed { at } => {
                row.next_run_at = Some(*at);
                row.uncount = 1;
            }
        }
        row
    }
}
