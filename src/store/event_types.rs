//! Executions per event type: the console's type filter shows them, and the REST API's
//! `GET /api/v1/event-types` can answer with the same function.

use super::{Result, Store, on_db};

/// The distinct types, each found by one index probe (`executions_type`), in order: SQLite and
/// PostgreSQL would otherwise read every entry of the index to find a few hundred values.
const TYPES: &str = "WITH RECURSIVE t(ty) AS (
        SELECT MIN(event_type) FROM executions
        UNION ALL
        SELECT (SELECT MIN(event_type) FROM executions WHERE event_type > t.ty) FROM t WHERE t.ty IS NOT NULL
     ) SELECT ty FROM t WHERE ty IS NOT NULL";

impl Store {
    /// Every event type present with how many executions it has, counted up to `cap` each
    /// (each count an index range of at most `cap` entries), sorted by type.
    pub async fn event_type_counts(&self, cap: i64) -> Result<Vec<(String, i64)>> {
        let sql = format!(
            "SELECT ty, (SELECT COUNT(*) FROM (SELECT 1 FROM executions x WHERE x.event_type = types.ty LIMIT {cap}) AS capped)
             FROM ({TYPES}) AS types ORDER BY ty"
        );
        on_db!(&self.db, pool => Ok(sqlx::query_as(&sql).fetch_all(pool).await?))
    }
}
