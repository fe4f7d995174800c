//! Reconciliation runs (`reconcile_sweeps`, migration 0010), the events already stored
//! (for a dry run), and on PostgreSQL the lock that lets one process sweep at a time.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::pool::PoolConnection;

use super::{Db, Result, Store, StoreError, now_ms, on_db, placeholders};

/// How long Stripe lists an event (`GET /v1/events`) after its creation.
pub const STRIPE_LISTS_EVENTS_FOR: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// One reconciliation run as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SweepRow {
    pub id: i64,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms; unset while it runs, or when its process stopped first.
    pub finished_at: Option<i64>,
    /// `created[gte]` of the listing, unix seconds.
    pub since: i64,
    /// `sweep` (the server's periodic one) or `command` (`deferral reconcile`).
    pub trigger: String,
    pub owner: String,
    pub pages: i64,
    pub seen: i64,
    pub added: i64,
    pub error: Option<String>,
}

/// What a finished run found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepCounts {
    pub pages: i64,
    pub seen: i64,
    pub added: i64,
}

/// The PostgreSQL session lock a sweep holds (on one connection of its own) while it runs.
/// Two keys, so it can never equal the executor's per-object locks (`hashtext('deferral-object')`).
const LOCK: &str = "hashtext('deferral-reconcile'), 0";

/// Held while a process sweeps. PostgreSQL: a session-level advisory lock on a connection taken
/// from the pool for the purpose; the lock ends with that session, so a process that dies
/// mid-sweep holds nothing. SQLite: one process owns the database, nothing to hold.
/// Its statements wait no longer than the store's deadline; a session that did not answer in
/// time is closed, never pooled (it may hold the lock).
pub struct SweepLock {
    connection: Option<PoolConnection<sqlx::Postgres>>,
    deadline: Duration,
}

impl SweepLock {
    /// Unlocks and gives the connection back to the pool.
    pub async fn release(mut self) {
        if let Some(mut connection) = self.connection.take() {
            let sql = format!("SELECT pg_advisory_unlock({LOCK})");
            let unlock = sqlx::query(&sql).execute(&mut *connection);
            let unlocked = tokio::time::timeout(self.deadline, unlock).await;
            if !matches!(unlocked, Ok(Ok(_))) {
                // Not known to be unlocked: the session must end rather than return to the pool.
                drop(connection.detach());
            }
        }
    }
}

impl Drop for SweepLock {
    fn drop(&mut self) {
        // Dropped without `release` (the task was cancelled): closing the session unlocks.
        if let Some(connection) = self.connection.take() {
            drop(connection.detach());
        }
    }
}

impl Store {
    /// The sweep lock, or `None` when another process holds it (it is sweeping now).
    pub async fn try_sweep_lock(&self) -> Result<Option<SweepLock>> {
        let deadline = self.deadline;
        let Db::Postgres(pool) = &self.db else {
            return Ok(Some(SweepLock {
                connection: None,
                deadline,
            }));
        };
        let mut connection = self.bounded("sweep lock", async { Ok(pool.acquire().await?) }).await?;
        let sql = format!("SELECT pg_try_advisory_lock({LOCK})");
        let lock = sqlx::query_as(&sql).fetch_one(&mut *connection);
        let (locked,): (bool,) = match tokio::time::timeout(deadline, lock).await {
            Ok(answer) => answer?,
            Err(_) => {
                // The lock may be taken by now: the session ends rather than return to the pool.
                drop(connection.detach());
                return Err(StoreError::Timeout {
                    what: "sweep lock",
                    after: deadline,
                });
            }
        };
        Ok(locked.then_some(SweepLock {
            connection: Some(connection),
            deadline,
        }))
    }

    /// Records the start of a run; returns its id.
    pub async fn sweep_started(&self, since: i64, trigger: &str, owner: &str) -> Result<i64> {
        on_db!(&self.writer, pool => Ok(sqlx::query_scalar(
            "INSERT INTO reconcile_sweeps (started_at, since, trigger, owner) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(now_ms())
        .bind(since)
        .bind(trigger)
        .bind(owner)
        .fetch_one(pool)
        .await?))
    }

    /// Records how a run ended: what it found, and why it stopped early if it did.
    pub async fn sweep_finished(&self, id: i64, counts: SweepCounts, error: Option<&str>) -> Result<()> {
        on_db!(&self.writer, pool => sqlx::query(
            "UPDATE reconcile_sweeps SET finished_at = $1, pages = $2, seen = $3, added = $4, error = $5 WHERE id = $6",
        )
        .bind(now_ms())
        .bind(counts.pages)
        .bind(counts.seen)
        .bind(counts.added)
        .bind(error)
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// The most recent runs, newest first; of one trigger when given.
    pub async fn recent_sweeps(&self, trigger: Option<&str>, limit: i64) -> Result<Vec<SweepRow>> {
        on_db!(&self.db, pool => Ok(sqlx::query_as(
            "SELECT id, started_at, finished_at, since, trigger, owner, pages, seen, added, error FROM reconcile_sweeps
             WHERE (CAST($1 AS TEXT) IS NULL OR trigger = $1) ORDER BY started_at DESC, id DESC LIMIT $2",
        )
        .bind(trigger)
        .bind(limit)
        .fetch_all(pool)
        .await?))
    }

    /// Forgets runs that started before `before` (unix ms).
    pub async fn prune_sweeps(&self, before: i64) -> Result<u64> {
        on_db!(&self.writer, pool => Ok(sqlx::query("DELETE FROM reconcile_sweeps WHERE started_at < $1")
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected()))
    }

    /// Which of `ids` are stored events (delivered or reconciled before).
    pub async fn stored_events(&self, ids: &[&str]) -> Result<HashSet<String>> {
        let mut stored = HashSet::new();
        for chunk in ids.chunks(500) {
            let sql = self.db.sql(format!(
                "SELECT id FROM events WHERE id IN ({})",
                placeholders(chunk.len())
            ));
            let rows: Vec<String> = on_db!(&self.db, pool => {
                let mut q = sqlx::query_scalar(&sql);
                for id in chunk {
                    q = q.bind(*id);
                }
                q.fetch_all(pool).await?
            });
            stored.extend(rows);
        }
        Ok(stored)
    }
}
