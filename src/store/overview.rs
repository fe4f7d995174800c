//! The console overview's reads: finished executions per interval by outcome, and the types
//! that fail most. Both are ranges of the `(final_state, created_at)` index of finished rows
//! (migrations 0004/0005), one range per final state, read without touching the table.

use super::{Result, Store, on_db};

impl Store {
    /// Finished executions created since `since` (ms), per `bucket_ms` interval and final state:
    /// `(final_state, interval number from since, count)`.
    pub async fn outcomes_per_interval(&self, since: i64, bucket_ms: i64) -> Result<Vec<(String, i64, i64)>> {
        let sql = "SELECT final_state, (created_at - $1) / $2 AS bucket, COUNT(*) FROM executions
             WHERE finished_at IS NOT NULL AND final_state IN ('succeeded', 'failed', 'cancelled', 'discarded')
               AND created_at >= $3
             GROUP BY final_state, bucket";
        on_db!(&self.db, pool => Ok(sqlx::query_as(sql).bind(since).bind(bucket_ms).bind(since).fetch_all(pool).await?))
    }

    /// The `limit` event types with the most failed executions created since `since` (ms).
    pub async fn failing_types(&self, since: i64, limit: i64) -> Result<Vec<(String, i64)>> {
        let sql = "SELECT event_type, COUNT(*) AS n FROM executions
             WHERE finished_at IS NOT NULL AND final_state = 'failed' AND created_at >= $1
             GROUP BY event_type ORDER BY n DESC, event_type LIMIT $2";
        on_db!(&self.db, pool => Ok(sqlx::query_as(sql).bind(since).bind(limit).fetch_all(pool).await?))
    }
}
