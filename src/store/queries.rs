//! What the console and the REST API read about executions.

use domain::model::{Attempt, Cursor, Execution, ExecutionFilter, State};

use super::filter::{Arg, bind_args, filter_sql};
use super::rows::{COLUMNS, ExecutionRow, rfc3339};
use super::{Result, Store, on_db, placeholders};

#[derive(sqlx::FromRow)]
struct AttemptRow {
    number: i64,
    started_at: i64,
    finished_at: i64,
    duration_us: i64,
    outcome: String,
    error_kind: Option<String>,
    error_message: Option<String>,
}

impl Store {
    pub async fn execution(&self, id: &str) -> Result<Option<ExecutionRow>> {
        let sql = format!("SELECT {COLUMNS} FROM executions WHERE id = $1");
        on_db!(&self.db, pool => Ok(sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?))
    }

    pub async fn attempts(&self, execution_id: &str) -> Result<Vec<Attempt>> {
        let rows: Vec<AttemptRow> = on_db!(&self.db, pool => sqlx::query_as(
            "SELECT number, started_at, finished_at, duration_us, outcome, error_kind, error_message
             FROM attempts WHERE execution_id = $1 ORDER BY number",
        )
        .bind(execution_id)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|a| Attempt {
                number: a.number,
                started_at: rfc3339(a.started_at),
                finished_at: rfc3339(a.finished_at),
                duration_ms: a.duration_us as f64 / 1000.0,
                outcome: a.outcome,
                error_kind: a.error_kind,
                error_message: a.error_message,
            })
            .collect())
    }

    /// The stored payload of an event.
    pub async fn event_payload(&self, event_id: &str) -> Result<Option<String>> {
        on_db!(&self.db, pool => {
            let row: Option<(String,)> = sqlx::query_as("SELECT payload FROM events WHERE id = $1")
                .bind(event_id)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|(p,)| p))
        })
    }

    /// Executions created by re-running `id`.
    pub async fn reruns(&self, id: &str) -> Result<Vec<String>> {
        on_db!(&self.db, pool => {
            let rows: Vec<(String,)> = sqlx::query_as("SELECT id FROM executions WHERE rerun_of = $1 ORDER BY seq")
                .bind(id)
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(|(id,)| id).collect())
        })
    }

    /// Duration of each execution's latest attempt, in µs.
    pub async fn last_durations(&self, ids: &[&str]) -> Result<std::collections::HashMap<String, i64>> {
        let mut out = std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let in_ids = placeholders(ids.len());
        let sql = self.driver.sql(format!(
            "SELECT a.execution_id, a.duration_us FROM attempts a JOIN executions x ON x.id = a.execution_id
             WHERE a.execution_id IN ({in_ids}) AND a.number = x.attempts"
        ));
        let rows: Vec<(String, i64)> = on_db!(&self.db, pool => {
            let mut q = sqlx::query_as(&sql);
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(pool).await?
        });
        out.extend(rows);
        Ok(out)
    }

    /// Rows as the API and console show them, with each one's latest attempt duration.
    pub async fn views(&self, rows: &[ExecutionRow]) -> Result<Vec<Execution>> {
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let durations = self.last_durations(&ids).await?;
        Ok(rows.iter().map(|r| r.to_view(durations.get(&r.id).copied())).collect())
    }

    /// One page of executions matching `filter`, newest first.
    pub async fn list(&self, filter: &ExecutionFilter) -> Result<(Vec<ExecutionRow>, bool)> {
        let limit = filter.page_size() as i64;
        let (where_sql, args) = filter_sql(self, filter, true)?;
        let newer = matches!(filter.cursor, Some(Cursor::After(_)));
        let order = if newer { "ASC" } else { "DESC" };
        let sql = format!(
            "SELECT {COLUMNS} FROM executions WHERE {where_sql} ORDER BY seq {order} LIMIT {}",
            limit + 1
        );
        let mut rows: Vec<ExecutionRow> = on_db!(&self.db, pool => {
            bind_args!(sqlx::query_as(&sql), &args).fetch_all(pool).await?
        });
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        if newer {
            rows.reverse();
        }
        Ok((rows, more))
    }

    /// Counts per state for `filter`, bounded at `cap` per state so a huge table stays fast.
    pub async fn count_states(&self, filter: &ExecutionFilter, cap: i64) -> Result<Vec<(State, i64)>> {
        let mut out = Vec::new();
        let states: Vec<State> = if filter.statuses.is_empty() {
            State::ALL.to_vec()
        } else {
            filter.statuses.clone()
        };
        for state in states {
            let f = ExecutionFilter {
                statuses: vec![state],
                cursor: None,
                ..filter.clone()
            };
            let (where_sql, args) = filter_sql(self, &f, false)?;
            let sql =
                format!("SELECT COUNT(*) FROM (SELECT 1 FROM executions WHERE {where_sql} LIMIT {cap}) AS capped");
            let (n,): (i64,) = on_db!(&self.db, pool => {
                bind_args!(sqlx::query_as(&sql), &args).fetch_one(pool).await?
            });
            out.push((state, n));
        }
        Ok(out)
    }

    /// The API versions present, for the filter form (the types come with their counts:
    /// [`Store::event_type_totals`]).
    pub async fn api_versions(&self) -> Result<Vec<String>> {
        let sql = format!(
            "{} SELECT ty FROM versions ORDER BY ty",
            super::event_types::distinct("versions", "api_version")
        );
        on_db!(&self.db, pool => Ok(sqlx::query_scalar(&sql).fetch_all(pool).await?))
    }
}
