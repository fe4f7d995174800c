//! Executions per event type: a capped total per type for the console's type filter
//! ([`Store::event_type_totals`]), and exact counts per state for `GET /api/v1/event-types` and
//! the console's event-types page ([`Store::event_types`], with the pause holding each type).
//! Both enumerate the types and count them with the same SQL ([`distinct`], [`count_of`]).

use std::collections::HashMap;

use domain::event_types::{EventTypeSummary, EventTypes};
use domain::model::State;

use super::pauses::{PauseRow, matches, pause_view};
use super::{Result, Store, on_db};

/// `WITH … {name}(ty) AS (…)`: the distinct non-null values of `column`, each found by one probe
/// of an index on it, in order. SQLite and PostgreSQL would otherwise read every entry of the
/// index to find a few hundred values (`SELECT DISTINCT` took 60–100 ms at 1M executions).
pub(super) fn distinct(name: &str, column: &str) -> String {
    format!(
        "WITH RECURSIVE t(v) AS (
            SELECT MIN({column}) FROM executions
            UNION ALL
            SELECT (SELECT MIN({column}) FROM executions WHERE {column} > t.v) FROM t WHERE t.v IS NOT NULL
         ), {name}(ty) AS (SELECT v FROM t WHERE v IS NOT NULL)"
    )
}

/// `(SELECT COUNT(*) …)` of the executions matching `condition` (over `x`), reading no more
/// than `cap` index entries when a cap is given.
fn count_of(condition: &str, cap: Option<i64>) -> String {
    let limit = cap.map(|c| format!(" LIMIT {c}")).unwrap_or_default();
    format!("(SELECT COUNT(*) FROM (SELECT 1 FROM executions x WHERE {condition}{limit}) AS c)")
}

/// The executions of one event type: per final state, and the unfinished ones (scheduled or
/// running) together.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeCounts {
    pub event_type: String,
    /// Every final state, in [`State::ALL`] order, zeros included.
    pub finished: Vec<(State, i64)>,
    pub unfinished: i64,
}

impl Store {
    /// Every event type present, sorted, with how many executions it has, each count one
    /// range probe of `executions_type` read no further than `cap` entries: cheap at any table
    /// size, so the console's type filter shows it on every list page. One probe per type, not
    /// one per state as [`Store::event_type_counts`] makes: five probes per type made every
    /// list page 2–4 ms slower at 1M executions (docs/benchmarks-console.md).
    pub async fn event_type_totals(&self, cap: i64) -> Result<Vec<(String, i64)>> {
        let sql = format!(
            "{} SELECT ty, {} FROM types ORDER BY ty",
            distinct("types", "event_type"),
            count_of("x.event_type = types.ty", Some(cap))
        );
        on_db!(&self.db, pool => Ok(sqlx::query_as(&sql).fetch_all(pool).await?))
    }

    /// Every event type present, sorted, with its exact executions per final state and
    /// unfinished, each count an index range (`executions_finished_type`,
    /// `executions_unfinished_type`). Unfinished executions are not told apart here: no index
    /// says which are running (any would change at every claim).
    pub async fn event_type_counts(&self) -> Result<Vec<TypeCounts>> {
        let finished: Vec<State> = State::ALL.into_iter().filter(|s| s.is_final()).collect();
        let columns: String = finished
            .iter()
            .map(|s| {
                let condition =
                    format!("x.finished_at IS NOT NULL AND x.final_state = '{s}' AND x.event_type = types.ty");
                format!(", {}", count_of(&condition, None))
            })
            .collect();
        let sql = format!(
            "{} SELECT ty, {}{columns} FROM types ORDER BY ty",
            distinct("types", "event_type"),
            count_of("x.finished_at IS NULL AND x.event_type = types.ty", None)
        );
        // The type, the unfinished, and the four final states' counts.
        let rows: Vec<(String, i64, i64, i64, i64, i64)> =
            on_db!(&self.db, pool => sqlx::query_as(&sql).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(|(event_type, unfinished, a, b, c, d)| TypeCounts {
                event_type,
                finished: finished.iter().copied().zip([a, b, c, d]).collect(),
                unfinished,
            })
            .collect())
    }

    /// Every event type seen, with its exact counts per state (zeros left out) and the pause
    /// holding it; and every pause. Four reads, whatever the number of types.
    pub async fn event_types(&self) -> Result<EventTypes> {
        let counts = self.event_type_counts().await?;
        // The unfinished ones split by state: this reads the backlog's rows, once for all types.
        let running: HashMap<String, i64> = on_db!(&self.db, pool => sqlx::query_as::<_, (String, i64)>(
            "SELECT event_type, COUNT(*) FROM executions WHERE finished_at IS NULL AND state = 'running' GROUP BY event_type",
        )
        .fetch_all(pool)
        .await?)
        .into_iter()
        .collect();
        // The oldest pause matching each type (as `pause_of` picks), for all types in one query.
        let pause_rows: Vec<(String, String, String, i64)> = on_db!(&self.db, pool => sqlx::query_as(&format!(
            "{} SELECT types.ty, p.pattern, p.paused_by, p.paused_at FROM types JOIN event_type_pauses p ON {}
             ORDER BY p.paused_at DESC, p.pattern DESC",
            distinct("types", "event_type"),
            matches("types.ty")
        ))
        .fetch_all(pool)
        .await?);
        // Oldest last, so that it is the one kept.
        let paused: HashMap<String, PauseRow> = pause_rows
            .into_iter()
            .map(|(ty, pattern, by, at)| (ty, (pattern, by, at)))
            .collect();
        let types = counts
            .into_iter()
            .map(|t| {
                // Read apart, the two may disagree by what changed in between: never below zero.
                let running = running.get(&t.event_type).copied().unwrap_or(0).min(t.unfinished);
                let scheduled = t.unfinished - running;
                let counts = [(State::Scheduled, scheduled), (State::Running, running)]
                    .into_iter()
                    .chain(t.finished)
                    .filter(|(_, n)| *n > 0)
                    .collect();
                EventTypeSummary {
                    paused: paused.get(&t.event_type).cloned().map(|row| pause_view(row, scheduled)),
                    event_type: t.event_type,
                    counts,
                }
            })
            .collect();
        Ok(EventTypes {
            types,
            pauses: self.pauses().await?,
        })
    }
}
