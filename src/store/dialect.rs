//! The SQL that differs between SQLite and PostgreSQL: claiming.
//!
//! SQLite has one writer at a time, so a single `UPDATE … WHERE seq IN (SELECT …)` is atomic.
//! PostgreSQL has many: candidates are locked with `FOR UPDATE SKIP LOCKED` so concurrent
//! claimers in other processes take different rows instead of waiting on each other.

use super::executions::{COLUMNS, ExecutionRow};
use super::{Db, Result};

/// A scheduled execution may start only when no other unfinished execution for the same
/// Stripe object is running or comes before it (event `created`, then arrival).
const OBJECT_IS_FREE: &str = "(e.object_id IS NULL OR NOT EXISTS (
    SELECT 1 FROM executions o
    WHERE o.object_id = e.object_id AND o.state IN ('scheduled', 'running') AND o.seq <> e.seq
      AND (o.state = 'running' OR o.event_created < e.event_created
           OR (o.event_created = e.event_created AND o.seq < e.seq))))";

/// Past its discard deadline without a start: left for the discarder, never started late.
const NOT_OVERDUE: &str = "(e.discard_at IS NULL OR e.attempts > 0 OR e.discard_at >= $1)";

const SET_RUNNING: &str = "state = 'running', attempts = attempts + 1, started_at = $1, finished_at = NULL,
    lease_owner = $2, lease_expires_at = $3, next_run_at = NULL, cancel_requested = FALSE";

fn skip_clause(skip_types: &[String], first: usize) -> String {
    if skip_types.is_empty() {
        return String::new();
    }
    let ph: Vec<String> = (0..skip_types.len()).map(|k| format!("${}", first + k)).collect();
    format!(" AND e.event_type NOT IN ({})", ph.join(", "))
}

/// Claims up to `limit` due executions, skipping types that have their own limit.
pub(super) async fn claim(
    db: &Db,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
    skip_types: &[String],
) -> Result<Vec<ExecutionRow>> {
    let skip = skip_clause(skip_types, 5);
    let candidates = format!(
        "SELECT e.seq FROM executions e WHERE e.state = 'scheduled' AND e.next_run_at <= $1 AND {NOT_OVERDUE} AND {OBJECT_IS_FREE}{skip}
         ORDER BY e.next_run_at, e.seq LIMIT $4"
    );
    let rows = match db {
        Db::Sqlite(pool) => {
            let sql = format!("UPDATE executions SET {SET_RUNNING} WHERE seq IN ({candidates}) RETURNING {COLUMNS}");
            let mut q = sqlx::query_as(&sql).bind(now).bind(owner).bind(lease_until).bind(limit);
            for t in skip_types {
                q = q.bind(t);
            }
            q.fetch_all(pool).await?
        }
        Db::Postgres(pool) => {
            let sql = format!(
                "WITH picked AS ({candidates} FOR UPDATE SKIP LOCKED)
                 UPDATE executions SET {SET_RUNNING} FROM picked WHERE executions.seq = picked.seq RETURNING {}",
                qualified_columns()
            );
            let mut q = sqlx::query_as(&sql).bind(now).bind(owner).bind(lease_until).bind(limit);
            for t in skip_types {
                q = q.bind(t);
            }
            q.fetch_all(pool).await?
        }
    };
    Ok(rows)
}

/// Claims executions of one type with a concurrency limit, keeping `running` of that type
/// at or below `type_limit` across every process.
pub(super) async fn claim_type(
    db: &Db,
    owner: &str,
    now: i64,
    lease_until: i64,
    event_type: &str,
    type_limit: i64,
) -> Result<Vec<ExecutionRow>> {
    let candidates = format!(
        "SELECT e.seq FROM executions e WHERE e.state = 'scheduled' AND e.next_run_at <= $1 AND e.event_type = $4 AND {NOT_OVERDUE} AND {OBJECT_IS_FREE}
         ORDER BY e.next_run_at, e.seq
         LIMIT MAX(0, $5 - (SELECT COUNT(*) FROM executions r WHERE r.state = 'running' AND r.event_type = $4))"
    );
    match db {
        Db::Sqlite(pool) => {
            let sql = format!("UPDATE executions SET {SET_RUNNING} WHERE seq IN ({candidates}) RETURNING {COLUMNS}");
            Ok(sqlx::query_as(&sql)
                .bind(now)
                .bind(owner)
                .bind(lease_until)
                .bind(event_type)
                .bind(type_limit)
                .fetch_all(pool)
                .await?)
        }
        Db::Postgres(pool) => {
            // Serialise claimers of this type for the transaction so the running count holds.
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(format!("deferral-type:{event_type}"))
                .execute(&mut *tx)
                .await?;
            let sql = format!(
                "WITH picked AS ({} FOR UPDATE SKIP LOCKED)
                 UPDATE executions SET {SET_RUNNING} FROM picked WHERE executions.seq = picked.seq RETURNING {}",
                candidates.replace("MAX(0,", "GREATEST(0,"),
                qualified_columns()
            );
            let rows = sqlx::query_as(&sql)
                .bind(now)
                .bind(owner)
                .bind(lease_until)
                .bind(event_type)
                .bind(type_limit)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(rows)
        }
    }
}

fn qualified_columns() -> String {
    COLUMNS
        .split(", ")
        .map(|c| format!("executions.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}
