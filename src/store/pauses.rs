//! Paused event types (migration 0013): while a pause matches a type, its scheduled executions
//! are held: not claimed, not discarded, not counted as due. Webhooks are still stored.
//!
//! Which types a pause matches is written once, in SQL ([`matches`]), and serves the claim, the
//! discarder, the backlog, and every view that says what a pause holds.

use domain::event_types::{Pause, Waiting, parse_pattern};
use domain::model::State;

use super::{Result, Store, now_ms, on_db, rfc3339};

/// `pause p` matches the event type `type_expr` (an SQL expression): the same type, or a prefix
/// of it. `substr`, not `LIKE`: `_` is a wildcard to `LIKE` and common in type names.
pub(super) fn matches(type_expr: &str) -> String {
    format!(
        "(p.pattern = {type_expr} OR (p.prefix IS NOT NULL AND substr({type_expr}, 1, length(p.prefix)) = p.prefix))"
    )
}

/// No pause holds the execution whose event type is `type_expr`. The first test needs no row:
/// with no pause at all (the usual case) both backends evaluate it once per statement (an
/// uncorrelated subquery), so a claim pays nothing per candidate row. The rest is [`matches`]
/// in two parts, each read through an index (the primary key; the prefixes' partial index):
/// PostgreSQL's writers may not scan tables (`Store::open`), and the disabled scan's cost in a
/// plan, even one never executed, made every claim pay for JIT compilation (600 ms).
pub(crate) fn not_paused(type_expr: &str) -> String {
    format!(
        "(NOT EXISTS (SELECT 1 FROM event_type_pauses)
          OR (NOT EXISTS (SELECT 1 FROM event_type_pauses p WHERE p.pattern = {type_expr})
              AND NOT EXISTS (SELECT 1 FROM event_type_pauses p
                              WHERE p.prefix IS NOT NULL AND substr({type_expr}, 1, length(p.prefix)) = p.prefix)))"
    )
}

/// The executions whose discard deadline a pause of `pattern_param` (with its prefix,
/// `prefix_param`, or NULL) holds: scheduled, never started, with a deadline, of a matching type.
fn held_by_pattern(pattern_param: &str, prefix_param: &str) -> String {
    format!(
        "finished_at IS NULL AND state = 'scheduled' AND discard_at IS NOT NULL AND attempts = 0
         AND (event_type = {pattern_param}
              OR ({prefix_param} IS NOT NULL AND substr(event_type, 1, length({prefix_param})) = {prefix_param}))"
    )
}

/// Why pausing or resuming was refused.
#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    #[error("{0}")]
    Invalid(String),
    #[error("`{pattern}` is not paused{}", held_by.as_ref().map(|p| format!(" (it is held by the pause of `{p}`: resume that)")).unwrap_or_default())]
    NotPaused { pattern: String, held_by: Option<String> },
    #[error(transparent)]
    Store(#[from] super::StoreError),
}

pub(super) type PauseRow = (String, String, i64);

pub(super) fn pause_view((pattern, paused_by, paused_at): PauseRow, holds: i64) -> Pause {
    Pause {
        pattern,
        paused_by,
        paused_at: rfc3339(paused_at),
        holds,
    }
}

impl Store {
    /// Pauses `pattern` (a type, or a prefix ending in `*`). Pausing what is already paused
    /// keeps the first pause (who and since when). Returns the pause.
    pub async fn pause(&self, pattern: &str, by: &str) -> Result<Pause, PauseError> {
        let prefix = parse_pattern(pattern).map_err(PauseError::Invalid)?;
        on_db!(&self.writer, pool => {
            let mut tx = pool.begin_with(self.driver.begin_write()).await.map_err(super::StoreError::from)?;
            let now = now_ms();
            // Since when each execution it now holds is held, unless a pause holds it already
            // (then it is held since its `held_since`, or since it was created): `resume` moves
            // its discard deadline by the whole time held, however pauses overlap.
            sqlx::query(&format!(
                "UPDATE executions SET held_since = $1 WHERE {} AND held_since IS NULL AND {}",
                held_by_pattern("$2", "$3"),
                not_paused("executions.event_type")
            ))
            .bind(now)
            .bind(pattern)
            .bind(prefix)
            .execute(&mut *tx)
            .await
            .map_err(super::StoreError::from)?;
            sqlx::query(
                "INSERT INTO event_type_pauses (pattern, prefix, paused_by, paused_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (pattern) DO NOTHING",
            )
            .bind(pattern)
            .bind(prefix)
            .bind(by)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(super::StoreError::from)?;
            tx.commit().await.map_err(super::StoreError::from)?;
        });
        let pause = self.pauses().await?.into_iter().find(|p| p.pattern == pattern);
        pause.ok_or_else(|| PauseError::NotPaused {
            pattern: pattern.to_string(),
            held_by: None,
        })
    }

    /// Lifts the pause of `pattern` exactly as it was paused. Held executions run again in their
    /// usual order; their discard deadlines move by the time they were held, so that a pause
    /// never expires them. Returns the pause lifted.
    pub async fn resume(&self, pattern: &str) -> Result<Pause, PauseError> {
        let prefix = parse_pattern(pattern).map_err(PauseError::Invalid)?;
        let lifted: Option<Pause> = on_db!(&self.writer, pool => {
            let mut tx = pool.begin_with(self.driver.begin_write()).await.map_err(super::StoreError::from)?;
            let row: Option<PauseRow> = sqlx::query_as(
                "DELETE FROM event_type_pauses WHERE pattern = $1 RETURNING pattern, paused_by, paused_at",
            )
            .bind(pattern)
            .fetch_optional(&mut *tx)
            .await
            .map_err(super::StoreError::from)?;
            match row {
                None => None,
                Some(row) => {
                    // The executions this pause held that no other pause still holds: their
                    // deadline moves by the whole time held (since `held_since`, set when the
                    // first pause holding them began; unset: held since they were created).
                    // Those another pause still holds keep waiting, `held_since` unchanged.
                    // Now, not when the call began: the deadline moves by every moment held.
                    let moved = sqlx::query(&format!(
                        "UPDATE executions SET discard_at = discard_at + ($1 - COALESCE(held_since, created_at)), held_since = NULL
                         WHERE {} AND {}",
                        held_by_pattern("$2", "$3"),
                        not_paused("executions.event_type")
                    ))
                    .bind(now_ms())
                    .bind(pattern)
                    .bind(prefix)
                    .execute(&mut *tx)
                    .await
                    .map_err(super::StoreError::from)?
                    .rows_affected();
                    tx.commit().await.map_err(super::StoreError::from)?;
                    tracing::info!(pattern, deadlines_moved = moved, "resumed");
                    Some(pause_view(row, 0))
                }
            }
        });
        match lifted {
            Some(pause) => {
                self.notify_due().await?;
                Ok(pause)
            }
            None => Err(PauseError::NotPaused {
                pattern: pattern.to_string(),
                held_by: self.pause_of(pattern).await?.map(|p| p.pattern),
            }),
        }
    }

    /// Every pause, oldest first, with how many scheduled executions each holds.
    pub async fn pauses(&self) -> Result<Vec<Pause>> {
        let sql = format!(
            "SELECT p.pattern, p.paused_by, p.paused_at,
                    (SELECT COUNT(*) FROM executions e WHERE e.finished_at IS NULL AND e.state = 'scheduled' AND {})
             FROM event_type_pauses p ORDER BY p.paused_at, p.pattern",
            matches("e.event_type")
        );
        let rows: Vec<(String, String, i64, i64)> =
            on_db!(&self.db, pool => sqlx::query_as(&sql).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(|(pattern, by, at, holds)| pause_view((pattern, by, at), holds))
            .collect())
    }

    /// The pause holding `event_type`, if any (the oldest when several match).
    pub async fn pause_of(&self, event_type: &str) -> Result<Option<Pause>> {
        let sql = format!(
            "SELECT p.pattern, p.paused_by, p.paused_at FROM event_type_pauses p WHERE {} ORDER BY p.paused_at LIMIT 1",
            matches("$1")
        );
        let row: Option<PauseRow> = on_db!(&self.db, pool => {
            // SQLite numbers a reused `$1` once; PostgreSQL needs its type.
            sqlx::query_as(&sql.replace("$1", "CAST($1 AS TEXT)")).bind(event_type).fetch_optional(pool).await?
        });
        Ok(match row {
            Some(row) => {
                let holds = self.held_count(event_type).await?;
                Some(pause_view(row, holds))
            }
            None => None,
        })
    }

    async fn held_count(&self, event_type: &str) -> Result<i64> {
        on_db!(&self.db, pool => Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM executions WHERE finished_at IS NULL AND state = 'scheduled' AND event_type = $1",
        )
        .bind(event_type)
        .fetch_one(pool)
        .await?))
    }

    /// Why a scheduled execution waits although due: its type is paused, or an earlier
    /// execution of its object is unfinished (and maybe held). `None` when neither.
    pub async fn waiting(&self, row: &super::ExecutionRow) -> Result<Option<Waiting>> {
        if row.state != State::Scheduled {
            return Ok(None);
        }
        if let Some(pause) = self.pause_of(&row.event_type).await? {
            return Ok(Some(Waiting::Paused(pause)));
        }
        let Some(object_id) = &row.object_id else {
            return Ok(None);
        };
        let ahead: Option<(String, String)> = on_db!(&self.db, pool => sqlx::query_as(
            "SELECT o.id, o.event_type FROM executions o
             WHERE o.object_id = $1 AND o.finished_at IS NULL AND o.seq <> $2
               AND (o.state = 'running' OR o.event_created < $3 OR (o.event_created = $3 AND o.seq < $2))
             ORDER BY o.event_created, o.seq LIMIT 1",
        )
        .bind(object_id)
        .bind(row.seq)
        .bind(row.event_created)
        .fetch_optional(pool)
        .await?);
        Ok(match ahead {
            Some((execution_id, event_type)) => Some(Waiting::BehindObject {
                paused: self.pause_of(&event_type).await?,
                execution_id,
                event_type,
            }),
            None => None,
        })
    }
}
