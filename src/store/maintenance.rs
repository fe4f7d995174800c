//! The maintenance services' statements: rescue, discard, prune, and the backlog they watch.

use super::{Result, Store, now_ms, on_db};

/// Rescued per statement.
const RESCUE_BATCH: i64 = 1000;

impl Store {
    /// Puts executions whose lease expired (their worker died) back to `scheduled`, recording
    /// the lost attempt; those out of attempts fail. Up to `RESCUE_BATCH` at a time, set-based
    /// (see each driver's `rescue`). Returns the rescued ids.
    pub async fn rescue(&self) -> Result<Vec<String>> {
        self.driver.rescue(now_ms(), RESCUE_BATCH).await
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

    /// Deletes up to `batch` finished executions older than `before` (their attempts go with
    /// them: `ON DELETE CASCADE`) in one statement, then the events no execution uses any more
    /// that are older too. Returns executions deleted.
    pub async fn prune(&self, before: i64, batch: i64) -> Result<u64> {
        on_db!(&self.writer, pool => {
            let mut tx = pool.begin_with(self.driver.begin_write()).await?;
            let deleted = sqlx::query(
                "DELETE FROM executions WHERE seq IN (SELECT seq FROM executions
                   WHERE finished_at IS NOT NULL AND finished_at < $1
                   AND state IN ('succeeded', 'failed', 'cancelled', 'discarded') LIMIT $2)",
            )
            .bind(before)
            .bind(batch)
            .execute(&mut *tx)
            .await?
            .rows_affected();
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
            Ok(deleted)
        })
    }

    /// When the next scheduled execution falls due, if any is waiting in the future.
    pub async fn next_due_at(&self) -> Result<Option<i64>> {
        self.driver.next_due_at(now_ms()).await
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
}
