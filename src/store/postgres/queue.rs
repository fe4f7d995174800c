//! PostgreSQL: claiming, completing, renewing and rescuing executions, with other processes
//! doing the same at the same time.
//!
//! Statements that take many rows lock only rows no other transaction holds (`SKIP LOCKED`):
//! a heartbeat or a rescue would otherwise wait on a completion that waits on them, a deadlock.
//! A skipped row is being finished or rescued meanwhile; the next round sees it again.

use sqlx::PgPool;

use super::super::Result;
use super::super::claim_rules::{
    LEASE_EXPIRED, OBJECT_IS_FREE, SET_RUNNING, below_limit_clause, running_of_type, skip_clause, startable_now,
};
use super::super::executor::CompletionRow;
use super::super::rows::{CLAIMED_COLUMNS, ClaimedRow};

/// The executions table; the writers' pool plans index scans only (`PostgresDriver::open`).
const DUE: &str = "executions e";

/// PostgreSQL stamps `started_at` after the claim's snapshot: `$1` is read before the statement
/// runs, so a claim delayed (pool, CPU) could record a start earlier than the end of the attempt
/// it waited for (same object, or the same type at its limit) in another process.
fn set_running() -> String {
    SET_RUNNING.replace(
        "started_at = $1",
        "started_at = GREATEST($1, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT)",
    )
}

/// Step 1 of a claim: lock the candidate rows and their objects. Claimers of one object take
/// turns (a transaction-scoped advisory lock per object; a claimer that cannot get it skips the
/// object this round), so that step 2, a new statement with a new snapshot, sees every other
/// claim of the object committed. In one statement, two claimers whose snapshots differ by a
/// newly arrived event could each start a different execution of the same object.
fn lock_candidates(candidates: &str) -> String {
    format!(
        "WITH c AS MATERIALIZED ({candidates} FOR UPDATE SKIP LOCKED)
         SELECT seq FROM c WHERE object_id IS NULL OR pg_try_advisory_xact_lock(hashtext('deferral-object'), hashtext(object_id))"
    )
}

/// Step 2: starts the picked executions whose object is still free.
async fn start_picked(
    tx: &mut sqlx::PgConnection,
    picked: Vec<i64>,
    now: i64,
    owner: &str,
    lease_until: i64,
) -> Result<Vec<ClaimedRow>> {
    if picked.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "UPDATE executions e SET {} WHERE e.seq = ANY($4) AND e.state = 'scheduled' AND {OBJECT_IS_FREE} RETURNING {CLAIMED_COLUMNS}",
        set_running()
    );
    Ok(sqlx::query_as(&sql)
        .bind(now)
        .bind(owner)
        .bind(lease_until)
        .bind(picked)
        .fetch_all(tx)
        .await?)
}

pub(super) async fn claim(
    pool: &PgPool,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
    skip_types: &[String],
) -> Result<Vec<ClaimedRow>> {
    let candidates = format!(
        "SELECT e.seq, e.object_id {} ORDER BY e.next_run_at, e.seq LIMIT $4",
        startable_now(DUE, &skip_clause(skip_types, 5))
    );
    let mut tx = pool.begin().await?;
    // $2 and $3 are bound (typed) but only step 2 uses them: one numbering for both steps.
    let sql = lock_candidates(&candidates);
    let mut q = sqlx::query_scalar(&sql)
        .bind(now)
        .bind(owner)
        .bind(lease_until)
        .bind(limit);
    for t in skip_types {
        q = q.bind(t);
    }
    let picked: Vec<i64> = q.fetch_all(&mut *tx).await?;
    let rows = start_picked(&mut tx, picked, now, owner, lease_until).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Claimers of one type are serialised for the transaction, so the running count holds.
pub(super) async fn claim_type(
    pool: &PgPool,
    owner: &str,
    now: i64,
    lease_until: i64,
    event_type: &str,
    type_limit: i64,
    max: i64,
) -> Result<Vec<ClaimedRow>> {
    let candidates = format!(
        "SELECT e.seq, e.object_id {} ORDER BY e.next_run_at, e.seq LIMIT LEAST($6, GREATEST(0, $5 - {}))",
        startable_now(DUE, " AND e.event_type = $4"),
        running_of_type("$4")
    );
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("deferral-type:{event_type}"))
        .execute(&mut *tx)
        .await?;
    let picked: Vec<i64> = sqlx::query_scalar(&lock_candidates(&candidates))
        .bind(now)
        .bind(owner)
        .bind(lease_until)
        .bind(event_type)
        .bind(type_limit)
        .bind(max)
        .fetch_all(&mut *tx)
        .await?;
    let rows = start_picked(&mut tx, picked, now, owner, lease_until).await?;
    tx.commit().await?;
    Ok(rows)
}

pub(super) async fn claimable_exists(pool: &PgPool, now: i64, limited: &[(String, i64)]) -> Result<bool> {
    let sql = format!(
        "SELECT e.seq {} LIMIT 1",
        startable_now(DUE, &below_limit_clause(limited.len(), 2))
    );
    let mut q = sqlx::query_scalar(&sql).bind(now);
    for (t, limit) in limited {
        q = q.bind(t).bind(limit);
    }
    let found: Option<i64> = q.fetch_optional(pool).await?;
    Ok(found.is_some())
}

pub(super) async fn next_due_at(pool: &PgPool, now: i64) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT MIN(next_run_at) FROM executions WHERE finished_at IS NULL AND next_run_at > $1 AND state = 'scheduled'",
    )
    .bind(now)
    .fetch_one(pool)
    .await?)
}

/// Records finished attempts in one statement of fixed text over arrays (one per column), so
/// it is prepared once and planned the same for any batch size. Each completion finds its
/// execution by id (`LATERAL`, an index probe per row, locking it) while its lease still says
/// whose the attempt was; the attempt rows and the executions' update follow. A join planned by
/// the optimiser instead walked every running execution for each completion.
pub(super) async fn complete(pool: &PgPool, owner: &str, rows: &[CompletionRow<'_>]) -> Result<u64> {
    const SQL: &str = "WITH v AS MATERIALIZED (
            SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[], $6::text[], $7::text[],
                                 $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::text[], $14::text[], $15::text[])
            AS v(id, state, next_run_at, finished_at, last_error, result, source,
                 uncount, attempt, started_at, ended_at, duration_us, outcome, kind, message)),
        x AS MATERIALIZED (
            SELECT x.seq, x.lease_owner, v.* FROM v CROSS JOIN LATERAL (
                SELECT seq, lease_owner FROM executions x
                WHERE x.id = v.id AND x.attempts = v.attempt AND x.lease_owner = $16 AND x.state = 'running'
                FOR UPDATE) x),
        recorded AS (
            INSERT INTO attempts (execution_id, number, started_at, finished_at, duration_us, outcome, error_kind, error_message, worker)
            SELECT id, attempt, started_at, ended_at, duration_us, outcome, kind, message, lease_owner FROM x
            WHERE outcome IS NOT NULL
            ON CONFLICT DO NOTHING)
        UPDATE executions e SET state = x.state, next_run_at = x.next_run_at, finished_at = x.finished_at,
            last_error = COALESCE(x.last_error, e.last_error), result = COALESCE(x.result, e.result),
            source = COALESCE(x.source, e.source), attempts = e.attempts - x.uncount,
            lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE
        FROM x WHERE e.seq = x.seq";
    macro_rules! column {
        ($field:ident) => {
            rows.iter().map(|r| r.$field).collect::<Vec<_>>()
        };
    }
    let done = sqlx::query(SQL)
        .bind(column!(id))
        .bind(column!(state))
        .bind(column!(next_run_at))
        .bind(column!(finished_at))
        .bind(column!(last_error))
        .bind(column!(result))
        .bind(column!(source))
        .bind(column!(uncount))
        .bind(column!(attempt))
        .bind(column!(started_at))
        .bind(column!(ended_at))
        .bind(column!(duration_us))
        .bind(column!(outcome))
        .bind(column!(kind))
        .bind(column!(message))
        .bind(owner)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// One statement of fixed text over the ids; the rows are locked skipping those a completion holds.
pub(super) async fn heartbeat(
    pool: &PgPool,
    owner: &str,
    running: &[String],
    until: i64,
) -> Result<Vec<(String, bool)>> {
    Ok(sqlx::query_as(
        "UPDATE executions SET lease_expires_at = $1 WHERE seq IN (SELECT seq FROM executions
         WHERE lease_owner = $2 AND state = 'running' AND id = ANY($3) FOR UPDATE SKIP LOCKED)
         RETURNING id, cancel_requested",
    )
    .bind(until)
    .bind(owner)
    .bind(running)
    .fetch_all(pool)
    .await?)
}

/// One statement: the expired leases are locked (skipping rows a completion holds), their lost
/// attempts recorded while the lease still names the worker, and the executions moved. No lease
/// index (it would keep claims from being HOT, migration 0005): this walks the unfinished rows.
pub(super) async fn rescue(pool: &PgPool, now: i64, limit: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "WITH expired AS MATERIALIZED (
             SELECT seq, id, attempts, started_at, lease_owner FROM executions
             WHERE finished_at IS NULL AND state = 'running' AND lease_expires_at < $1
             ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED),
         lost AS (
             INSERT INTO attempts (execution_id, number, started_at, finished_at, duration_us, outcome, error_kind, error_message, worker)
             SELECT id, attempts, COALESCE(started_at, $1), $1, ($1 - COALESCE(started_at, $1)) * 1000, 'lost', 'lost', $3, lease_owner
             FROM expired
             ON CONFLICT DO NOTHING)
         UPDATE executions e SET
             state = CASE WHEN e.attempts >= e.max_attempts THEN 'failed' ELSE 'scheduled' END,
             next_run_at = CASE WHEN e.attempts >= e.max_attempts THEN NULL ELSE $1 END,
             finished_at = CASE WHEN e.attempts >= e.max_attempts THEN $1 END,
             last_error = $3, lease_owner = NULL, lease_expires_at = NULL
         FROM expired x WHERE e.seq = x.seq
         RETURNING e.id",
    )
    .bind(now)
    .bind(limit)
    .bind(LEASE_EXPIRED)
    .fetch_all(pool)
    .await?)
}
