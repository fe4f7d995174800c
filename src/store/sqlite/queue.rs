//! SQLite: claiming, completing, renewing and rescuing executions.
//!
//! One writer connection, so a transaction sees no one else's writes: what a statement picked
//! is still there for the next one, and no row needs locking. Claims move whole batches as one
//! JSON value per statement, never a row each: every returned row is a hand-off between
//! SQLite's thread and the caller's, which cost more than the claim itself.

use sqlx::SqlitePool;

use super::super::Result;
use super::super::claim_rules::{
    LEASE_EXPIRED, SET_RUNNING, below_limit_clause, running_of_type, skip_clause, startable_now,
};
use super::super::executor::CompletionRow;
use super::super::rows::{COLUMNS, ClaimedRow, event_column};
use super::super::{placeholders_from, values_list};
use super::{BEGIN_WRITE, sql};

/// The due executions in due order, read through the due index. Without statistics SQLite may
/// pick another index, one it must then sort every scheduled row of.
const DUE: &str = "executions e INDEXED BY executions_due";

/// Rows per multi-row statement: well under SQLite's bind-parameter limit.
const COMPLETION_CHUNK: usize = 512;

/// Step 1 of a claim: the candidates' `seq` as one JSON array.
fn pick(candidates: &str) -> String {
    format!("SELECT json_group_array(seq) FROM ({candidates})")
}

/// Step 2: starts the picked executions (one writer: they are still due) and reads them back,
/// with their payloads, as one JSON array.
async fn start_picked(
    tx: &mut sqlx::SqliteConnection,
    picked: &str,
    now: i64,
    owner: &str,
    lease_until: i64,
) -> Result<Vec<ClaimedRow>> {
    if picked == "[]" {
        return Ok(Vec::new());
    }
    sqlx::query(&format!(
        "UPDATE executions SET {SET_RUNNING} WHERE seq IN (SELECT value FROM json_each($4))"
    ))
    .bind(now)
    .bind(owner)
    .bind(lease_until)
    .bind(picked)
    .execute(&mut *tx)
    .await?;
    let json: String = sqlx::query_scalar(&format!(
        "SELECT json_group_array(json_object({})) FROM executions WHERE seq IN (SELECT value FROM json_each($1))",
        claimed_json_object()
    ))
    .bind(picked)
    .fetch_one(&mut *tx)
    .await?;
    serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)).into())
}

/// `'row', json_object('seq', seq, …), 'payload', …`: a `ClaimedRow` in JSON.
fn claimed_json_object() -> &'static str {
    static OBJECT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OBJECT.get_or_init(|| {
        let fields: Vec<String> = COLUMNS
            .split(", ")
            .map(|c| match c {
                // Stored as 0/1; JSON wants true/false.
                "livemode" => "'livemode', json(CASE WHEN livemode THEN 'true' ELSE 'false' END)".to_string(),
                c => format!("'{c}', {c}"),
            })
            .collect();
        format!(
            "'row', json_object({}), 'payload', {}",
            fields.join(", "),
            event_column!("payload")
        )
    })
}

pub(super) async fn claim(
    pool: &SqlitePool,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
    skip_types: &[String],
) -> Result<Vec<ClaimedRow>> {
    let candidates = format!(
        "SELECT e.seq {} ORDER BY e.next_run_at, e.seq LIMIT $4",
        startable_now(DUE, &skip_clause(skip_types, 5))
    );
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let pick = pick(&candidates);
    // $2 and $3 are bound but only step 2 uses them: one numbering for both steps.
    let mut q = sqlx::query_scalar(&pick)
        .bind(now)
        .bind(owner)
        .bind(lease_until)
        .bind(limit);
    for t in skip_types {
        q = q.bind(t);
    }
    let picked: String = q.fetch_one(&mut *tx).await?;
    let rows = start_picked(&mut tx, &picked, now, owner, lease_until).await?;
    tx.commit().await?;
    Ok(rows)
}

/// One writer: the running count read in the claim's statement holds until it commits.
pub(super) async fn claim_type(
    pool: &SqlitePool,
    owner: &str,
    now: i64,
    lease_until: i64,
    event_type: &str,
    type_limit: i64,
    max: i64,
) -> Result<Vec<ClaimedRow>> {
    let candidates = format!(
        "SELECT e.seq {} ORDER BY e.next_run_at, e.seq LIMIT MIN($6, MAX(0, $5 - {}))",
        startable_now(DUE, " AND e.event_type = $4"),
        running_of_type("$4")
    );
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let picked: String = sqlx::query_scalar(&pick(&candidates))
        .bind(now)
        .bind(owner)
        .bind(lease_until)
        .bind(event_type)
        .bind(type_limit)
        .bind(max)
        .fetch_one(&mut *tx)
        .await?;
    let rows = start_picked(&mut tx, &picked, now, owner, lease_until).await?;
    tx.commit().await?;
    Ok(rows)
}

pub(super) async fn claimable_exists(pool: &SqlitePool, now: i64, limited: &[(String, i64)]) -> Result<bool> {
    let statement = sql(format!(
        "SELECT e.seq {} LIMIT 1",
        startable_now(DUE, &below_limit_clause(limited.len(), 2))
    ));
    let mut q = sqlx::query_scalar(&statement).bind(now);
    for (t, limit) in limited {
        q = q.bind(t).bind(limit);
    }
    let found: Option<i64> = q.fetch_optional(pool).await?;
    Ok(found.is_some())
}

pub(super) async fn next_due_at(pool: &SqlitePool, now: i64) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT MIN(next_run_at) FROM executions WHERE finished_at IS NULL AND next_run_at > $1 AND state = 'scheduled'",
    )
    .bind(now)
    .fetch_one(pool)
    .await?)
}

/// Two multi-row statements per chunk, neither returning rows: the attempt rows first, while
/// the lease still says whose they are, then the executions.
pub(super) async fn complete(pool: &SqlitePool, owner: &str, rows: &[CompletionRow<'_>]) -> Result<u64> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let mut applied = 0;
    for chunk in rows.chunks(COMPLETION_CHUNK) {
        let owner_param = chunk.len() * 8 + 1;
        let statement = sql(format!(
            "INSERT INTO attempts (execution_id, number, started_at, finished_at, duration_us, outcome, error_kind, error_message, worker)
             SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, x.lease_owner
             FROM (VALUES {}) AS v
             JOIN executions x ON x.id = v.column1 AND x.attempts = v.column2
             WHERE v.column6 IS NOT NULL AND x.lease_owner = ${owner_param} AND x.state = 'running'
             ON CONFLICT DO NOTHING",
            values_list(chunk.len(), 8, 1)
        ));
        let mut q = sqlx::query(&statement);
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
        let statement = sql(format!(
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
        let mut q = sqlx::query(&statement);
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

pub(super) async fn heartbeat(
    pool: &SqlitePool,
    owner: &str,
    running: &[String],
    until: i64,
) -> Result<Vec<(String, bool)>> {
    let mut renewed = Vec::with_capacity(running.len());
    for chunk in running.chunks(500) {
        let statement = sql(format!(
            "UPDATE executions SET lease_expires_at = $1
             WHERE lease_owner = $2 AND state = 'running' AND id IN ({})
             RETURNING id, cancel_requested",
            placeholders_from(chunk.len(), 3)
        ));
        let mut q = sqlx::query_as(&statement).bind(until).bind(owner);
        for id in chunk {
            q = q.bind(id);
        }
        renewed.extend(q.fetch_all(pool).await?);
    }
    Ok(renewed)
}

/// The expired leases, through the lease index: without it SQLite may walk the whole backlog
/// in `seq` order.
const EXPIRED: &str = "SELECT seq FROM executions INDEXED BY executions_lease_expiry
    WHERE finished_at IS NULL AND state = 'running' AND lease_expires_at < $1 ORDER BY seq LIMIT $2";

/// Two statements over one set (one writer: the second sees what the first saw): the lost
/// attempts are recorded while the lease still names their worker, then the executions move.
pub(super) async fn rescue(pool: &SqlitePool, now: i64, limit: i64) -> Result<Vec<String>> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    sqlx::query(&format!(
        "INSERT INTO attempts (execution_id, number, started_at, finished_at, duration_us, outcome, error_kind, error_message, worker)
         SELECT id, attempts, COALESCE(started_at, $1), $1, ($1 - COALESCE(started_at, $1)) * 1000, 'lost', 'lost', $3, lease_owner
         FROM executions WHERE seq IN ({EXPIRED})
         ON CONFLICT DO NOTHING"
    ))
    .bind(now)
    .bind(limit)
    .bind(LEASE_EXPIRED)
    .execute(&mut *tx)
    .await?;
    let rescued: Vec<String> = sqlx::query_scalar(&format!(
        "UPDATE executions SET
             state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'scheduled' END,
             next_run_at = CASE WHEN attempts >= max_attempts THEN NULL ELSE $1 END,
             finished_at = CASE WHEN attempts >= max_attempts THEN $1 END,
             last_error = $3, lease_owner = NULL, lease_expires_at = NULL
         WHERE seq IN ({EXPIRED})
         RETURNING id"
    ))
    .bind(now)
    .bind(limit)
    .bind(LEASE_EXPIRED)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rescued)
}
