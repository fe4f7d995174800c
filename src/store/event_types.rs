//! Executions per event type, counted once ([`Store::event_type_counts`]) for the console's
//! type filter (capped, summed per type) and for `GET /api/v1/event-types` and the console's
//! event-types page ([`Store::event_types`]: exact, per state, with the pause holding each type).

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

/// The executions of one event type: per final state, and the unfinished ones (scheduled or
/// running) together. With a cap, each of these counts stops at the cap.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeCounts {
    pub event_type: String,
    /// Every final state, in [`State::ALL`] order, zeros included.
    pub finished: Vec<(State, i64)>,
    pub unfinished: i64,
    /// Some count stopped at the cap: the type has more executions than counted.
    pub capped: bool,
}

impl TypeCounts {
    pub fn total(&self) -> i64 {
        self.finished.iter().map(|(_, n)| n).sum::<i64>() + self.unfinished
    }
}

impl Store {
    /// Every event type present, sorted, with its executions per final state and unfinished,
    /// each count an index range probe (`executions_finished_type`, `executions_unfinished_type`)
    /// read no further than `cap` entries when a cap is given: cheap at any table size, so the
    /// console can show it on every list page. Unfinished executions are not told apart here:
    /// no index says which are running (any would change at every claim).
    pub async fn event_type_counts(&self, cap: Option<i64>) -> Result<Vec<TypeCounts>> {
        let limit = cap.map(|c| format!(" LIMIT {c}")).unwrap_or_default();
        let finished: Vec<State> = State::ALL.into_iter().filter(|s| s.is_final()).collect();
        let columns: String = finished
            .iter()
            .map(|s| {
                format!(
                    ", (SELECT COUNT(*) FROM (SELECT 1 FROM executions x WHERE x.finished_at IS NOT NULL
                        AND x.final_state = '{s}' AND x.event_type = types.ty{limit}) AS c)"
                )
            })
            .collect();
        let sql = format!(
            "{} SELECT ty, (SELECT COUNT(*) FROM (SELECT 1 FROM executions x WHERE x.finished_at IS NULL
                                 AND x.event_type = types.ty{limit}) AS c){columns}
             FROM types ORDER BY ty",
            distinct("types", "event_type")
        );
        // The type, the unfinished, and the four final states' counts.
        let rows: Vec<(String, i64, i64, i64, i64, i64)> =
            on_db!(&self.db, pool => sqlx::query_as(&sql).fetch_all(pool).await?);
        let at_cap = |n: i64| cap.is_some_and(|c| n >= c);
        Ok(rows
            .into_iter()
            .map(|(event_type, unfinished, a, b, c, d)| {
                let finished: Vec<(State, i64)> = finished.iter().copied().zip([a, b, c, d]).collect();
                TypeCounts {
                    capped: at_cap(unfinished) || finished.iter().any(|(_, n)| at_cap(*n)),
                    event_type,
                    finished,
                    unfinished,
                }
            })
            .collect())
    }

    /// Every event type seen, with its exact counts per state (zeros left out) and the pause
    /// holding it; and every pause. Four reads, whatever the number of types.
    pub async fn event_types(&self) -> Result<EventTypes> {
        let counts = self.event_type_counts(None).await?;
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
