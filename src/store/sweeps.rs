//! Reconciliation runs (`reconcile_sweeps`, migration 0010) and the events already stored (for
//! a dry run). Which process sweeps is the leader election's (`store::leader`).

use super::{Result, Store, now_ms, on_db, placeholders};
use std::collections::HashSet;

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
    /// Unix ms of its latest page (migration 0018); unset before the first.
    pub progressed_at: Option<i64>,
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

impl Store {
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

    /// Records what a run found so far, after each page: a run that records nothing for long
    /// has stopped (its process died), see `reconcile::interrupted`.
    pub async fn sweep_progressed(&self, id: i64, counts: SweepCounts) -> Result<()> {
        self.sweep_update(id, counts, None).await
    }

    /// Records how a run ended: what it found, and why it stopped early if it did.
    pub async fn sweep_finished(&self, id: i64, counts: SweepCounts, error: Option<&str>) -> Result<()> {
        self.sweep_update(id, counts, Some(error)).await
    }

    /// `ended`: the run ended, with this error if any.
    async fn sweep_update(&self, id: i64, counts: SweepCounts, ended: Option<Option<&str>>) -> Result<()> {
        let now = now_ms();
        on_db!(&self.writer, pool => sqlx::query(
            "UPDATE reconcile_sweeps SET progressed_at = $1, finished_at = COALESCE($2, finished_at),
                 pages = $3, seen = $4, added = $5, error = COALESCE($6, error) WHERE id = $7",
        )
        .bind(now)
        .bind(ended.map(|_| now))
        .bind(counts.pages)
        .bind(counts.seen)
        .bind(counts.added)
        .bind(ended.flatten())
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// The most recent runs, newest first; of one trigger when given.
    pub async fn recent_sweeps(&self, trigger: Option<&str>, limit: i64) -> Result<Vec<SweepRow>> {
        on_db!(&self.db, pool => Ok(sqlx::query_as(
            "SELECT id, started_at, finished_at, progressed_at, since, trigger, owner, pages, seen, added, error FROM reconcile_sweeps
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

    /// The connected accounts (`acct_…`) of the executions of events created since `since`
    /// (unix seconds): Stripe lists their events only to a request made as the account.
    /// Only Connect executions have an account, so the partial index `executions_account`
    /// holds all the rows this reads.
    pub async fn connect_accounts(&self, since: i64) -> Result<Vec<String>> {
        on_db!(&self.db, pool => Ok(sqlx::query_scalar(
            "SELECT DISTINCT account FROM executions WHERE account IS NOT NULL AND event_created >= $1 ORDER BY account",
        )
        .bind(since)
        .fetch_all(pool)
        .await?))
    }

    /// Which of `ids` are stored events (delivered or reconciled before).
    pub async fn stored_events(&self, ids: &[&str]) -> Result<HashSet<String>> {
        let mut stored = HashSet::new();
        for chunk in ids.chunks(500) {
            let sql = self.driver.sql(format!(
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
