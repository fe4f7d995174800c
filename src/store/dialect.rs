//! The SQL that differs between SQLite and PostgreSQL: claiming, row locking, planner hints.
//!
//! SQLite has one writer connection, so the statements of a claim's transaction see no one
//! else's writes; batches move as one JSON value per statement (see `sqlite_pick`).
//! PostgreSQL has many writers: candidates are locked with `FOR UPDATE SKIP LOCKED` so concurrent
//! claimers in other processes take different rows instead of waiting on each other, and
//! claimers of one Stripe object take turns (see `pg_lock_candidates`).

use super::executions::{CLAIMED_COLUMNS, COLUMNS, ClaimedRow, CompletionRow, event_column};
use super::{Db, Result, placeholders_from};

/// A scheduled execution may start only when no other unfinished execution for the same
/// Stripe object is running or comes before it (event `created`, then arrival). Unfinished is
/// `finished_at IS NULL`, the condition of the `executions_object_active` index.
const OBJECT_IS_FREE: &str = "(e.object_id IS NULL OR NOT EXISTS (
    SELECT 1 FROM executions o
    WHERE o.object_id = e.object_id AND o.finished_at IS NULL AND o.seq <> e.seq
      AND (o.state = 'running' OR o.event_created < e.event_created
           OR (o.event_created = e.event_created AND o.seq < e.seq))))";

/// Not held by a paused event type (issue 18; `store::pauses`). Nothing to do per row without a pause.
fn not_held() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| super::pauses::not_paused("e.event_type"))
}

/// Past its discard deadline without a start: left for the discarder, never started late.
const NOT_OVERDUE: &str = "(e.discard_at IS NULL OR e.attempts > 0 OR e.discard_at >= $1)";

/// Only columns no index reads (migration 0005): on PostgreSQL the claim is then a HOT update,
/// which writes no index entry. `next_run_at` keeps the time the execution was due, so the row
/// stays in `executions_due`; claimers skip it by its state.
const SET_RUNNING: &str = "state = 'running', attempts = attempts + 1, started_at = $1,
    lease_owner = $2, lease_expires_at = $3, cancel_requested = FALSE";

/// PostgreSQL stamps `started_at` after the claim's snapshot: `$1` is read before the statement
/// runs, so a claim delayed (pool, CPU) could record a start earlier than the end of the attempt
/// it waited for (same object, or the same type at its limit) in another process.
fn pg_set_running() -> String {
    SET_RUNNING.replace(
        "started_at = $1",
        "started_at = GREATEST($1, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT)",
    )
}

/// PostgreSQL, step 1 of a claim: lock the candidate rows and their objects. Claimers of one
/// object take turns (a transaction-scoped advisory lock per object; a claimer that cannot get
/// it skips the object this round), so that step 2, a new statement with a new snapshot, sees
/// every other claim of the object committed. In one statement, two claimers whose snapshots
/// differ by a newly arrived event could each start a different execution of the same object.
fn pg_lock_candidates(candidates: &str) -> String {
    format!(
        "WITH c AS MATERIALIZED ({candidates} FOR UPDATE SKIP LOCKED)
         SELECT seq FROM c WHERE object_id IS NULL OR pg_try_advisory_xact_lock(hashtext('deferral-object'), hashtext(object_id))"
    )
}

/// PostgreSQL, step 2: starts the picked executions whose object is still free.
async fn pg_start_picked(
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
        pg_set_running()
    );
    Ok(sqlx::query_as(&sql)
        .bind(now)
        .bind(owner)
        .bind(lease_until)
        .bind(picked)
        .fetch_all(tx)
        .await?)
}

/// PostgreSQL: records finished attempts in one statement of fixed text over arrays (one per
/// column), so it is prepared once and planned the same for any batch size. Each completion
/// finds its execution by id (`LATERAL`, an index probe per row, locking it) while its lease
/// still says whose the attempt was; the attempt rows and the executions' update follow. A
/// join planned by the optimiser instead walked every running execution for each completion.
pub(super) async fn pg_complete(pool: &sqlx::PgPool, owner: &str, rows: &[CompletionRow<'_>]) -> Result<u64> {
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

/// SQLite, step 1 of a claim: the candidates' `seq` as one JSON array. SQLite claims move
/// whole batches as one value per statement, never a row each: every returned row is a
/// hand-off between SQLite's thread and the caller's, which cost more than the claim itself.
fn sqlite_pick(candidates: &str) -> String {
    format!("SELECT json_group_array(seq) FROM ({candidates})")
}

/// SQLite, step 2: starts the picked executions (one writer: they are still due) and reads
/// them back, with their payloads, as one JSON array.
async fn sqlite_start_picked(
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

/// PostgreSQL: lock only rows no other transaction holds. Statements that take many rows
/// (heartbeat, rescue) would otherwise wait on a completion that waits on them: a deadlock.
/// A skipped row is being finished or rescued meanwhile; the next round sees it again.
pub(super) fn skip_locked(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(_) => "",
        Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
    }
}

/// `column` in a comparison no index may serve. SQLite, without statistics, would pick an index
/// on any column compared for equality; a unary `+` rules it out. PostgreSQL plans by statistics.
pub(super) fn not_indexed(db: &Db, column: &str) -> String {
    match db {
        Db::Sqlite(_) => format!("+{column}"),
        Db::Postgres(_) => column.to_string(),
    }
}

/// SQLite: one process and one writer connection, so a transaction sees no concurrent writes.
pub(super) fn single_writer(db: &Db) -> bool {
    matches!(db, Db::Sqlite(_))
}

/// SQLite: read through `index`. Without statistics SQLite may pick another index (for a claim,
/// one it must then sort every scheduled row of; for the rescuer, the whole backlog in `seq`
/// order). PostgreSQL's writers plan for index scans anyway (`Store::open`).
pub(super) fn index_hint(db: &Db, index: &str) -> String {
    match db {
        Db::Sqlite(_) => format!("INDEXED BY {index}"),
        Db::Postgres(_) => String::new(),
    }
}

/// `FROM … WHERE …` of the executions a claim may start now (`$1`: now): due, scheduled, not
/// overdue, their object free; `extra` narrows it further. Claims and the executor's watchdog
/// (`claimable_exists`) read the same set.
fn startable_now(hint: &str, extra: &str) -> String {
    format!(
        "FROM executions e {hint} WHERE e.finished_at IS NULL AND e.next_run_at <= $1 AND e.state = 'scheduled' AND {NOT_OVERDUE} AND {OBJECT_IS_FREE}{extra} AND {}",
        not_held()
    )
}

/// Whether any execution could be claimed now, leaving out `skip_types` (those with a
/// concurrency limit, which may wait on it).
pub(super) async fn claimable_exists(db: &Db, now: i64, skip_types: &[String]) -> Result<bool> {
    let sql = format!(
        "SELECT e.seq {} LIMIT 1",
        startable_now(&index_hint(db, "executions_due"), &skip_clause(skip_types, 2))
    );
    let sql = db.sql(sql);
    let found: Option<i64> = super::on_db!(db, pool => {
        let mut q = sqlx::query_scalar(&sql).bind(now);
        for t in skip_types {
            q = q.bind(t);
        }
        q.fetch_optional(pool).await?
    });
    Ok(found.is_some())
}

fn skip_clause(skip_types: &[String], first: usize) -> String {
    if skip_types.is_empty() {
        return String::new();
    }
    format!(
        " AND e.event_type NOT IN ({})",
        placeholders_from(skip_types.len(), first)
    )
}

/// Claims up to `limit` due executions, skipping types that have their own limit.
pub(super) async fn claim(
    db: &Db,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
    skip_types: &[String],
) -> Result<Vec<ClaimedRow>> {
    let skip = skip_clause(skip_types, 5);
    let hint = index_hint(db, "executions_due");
    let columns = match db {
        Db::Sqlite(_) => "e.seq",
        Db::Postgres(_) => "e.seq, e.object_id",
    };
    let candidates = format!(
        "SELECT {columns} {} ORDER BY e.next_run_at, e.seq LIMIT $4",
        startable_now(&hint, &skip)
    );
    let rows = match db {
        Db::Sqlite(pool) => {
            let mut tx = pool.begin_with(db.begin_write()).await?;
            let pick = sqlite_pick(&candidates);
            let mut q = sqlx::query_scalar(&pick)
                .bind(now)
                .bind(owner)
                .bind(lease_until)
                .bind(limit);
            for t in skip_types {
                q = q.bind(t);
            }
            let picked: String = q.fetch_one(&mut *tx).await?;
            let rows = sqlite_start_picked(&mut tx, &picked, now, owner, lease_until).await?;
            tx.commit().await?;
            rows
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin_with(db.begin_write()).await?;
            // $2 and $3 are bound (typed) but only step 2 uses them: one numbering for both steps.
            let sql = pg_lock_candidates(&candidates);
            let mut q = sqlx::query_scalar(&sql)
                .bind(now)
                .bind(owner)
                .bind(lease_until)
                .bind(limit);
            for t in skip_types {
                q = q.bind(t);
            }
            let picked: Vec<i64> = q.fetch_all(&mut *tx).await?;
            let rows = pg_start_picked(&mut tx, picked, now, owner, lease_until).await?;
            tx.commit().await?;
            rows
        }
    };
    Ok(rows)
}

/// Claims executions of one type with a concurrency limit, keeping `running` of that type
/// at or below `type_limit` across every process, and taking at most `max` (free workers).
#[allow(clippy::too_many_arguments)]
pub(super) async fn claim_type(
    db: &Db,
    owner: &str,
    now: i64,
    lease_until: i64,
    event_type: &str,
    type_limit: i64,
    max: i64,
) -> Result<Vec<ClaimedRow>> {
    let hint = index_hint(db, "executions_due");
    let (least, greatest) = match db {
        Db::Sqlite(_) => ("MIN", "MAX"),
        Db::Postgres(_) => ("LEAST", "GREATEST"),
    };
    let columns = match db {
        Db::Sqlite(_) => "e.seq",
        Db::Postgres(_) => "e.seq, e.object_id",
    };
    let candidates = format!(
        "SELECT {columns} {} ORDER BY e.next_run_at, e.seq
         LIMIT {least}($6, {greatest}(0, $5 - (SELECT COUNT(*) FROM executions r WHERE r.finished_at IS NULL AND r.state = 'running' AND r.event_type = $4)))",
        startable_now(&hint, " AND e.event_type = $4")
    );
    match db {
        Db::Sqlite(pool) => {
            let mut tx = pool.begin_with(db.begin_write()).await?;
            let picked: String = sqlx::query_scalar(&sqlite_pick(&candidates))
                .bind(now)
                .bind(owner)
                .bind(lease_until)
                .bind(event_type)
                .bind(type_limit)
                .bind(max)
                .fetch_one(&mut *tx)
                .await?;
            let rows = sqlite_start_picked(&mut tx, &picked, now, owner, lease_until).await?;
            tx.commit().await?;
            Ok(rows)
        }
        Db::Postgres(pool) => {
            // Serialise claimers of this type for the transaction so the running count holds.
            let mut tx = pool.begin_with(db.begin_write()).await?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(format!("deferral-type:{event_type}"))
                .execute(&mut *tx)
                .await?;
            let picked: Vec<i64> = sqlx::query_scalar(&pg_lock_candidates(&candidates))
                .bind(now)
                .bind(owner)
                .bind(lease_until)
                .bind(event_type)
                .bind(type_limit)
                .bind(max)
                .fetch_all(&mut *tx)
                .await?;
            let rows = pg_start_picked(&mut tx, picked, now, owner, lease_until).await?;
            tx.commit().await?;
            Ok(rows)
        }
    }
}
