//! Operators' actions on one execution. Refused ones change nothing.

use domain::model::{Action, State};

use super::ingest::new_execution_id;
use super::rows::ExecutionRow;
use super::{Store, now_ms, on_db, placeholders_from, values_list};

/// Why an operator's action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no execution `{0}`")]
    NotFound(String),
    #[error("cannot {action}: the execution is {state}")]
    Refused { action: &'static str, state: State },
    #[error(transparent)]
    Store(#[from] super::StoreError),
}

/// An execution an action applied to, and the execution it created (a re-run's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acted {
    pub id: String,
    pub created: Option<String>,
}

impl Store {
    /// One operator action on one execution; a refused one changes nothing and says why.
    /// Returns the execution as it is now, or for a re-run the new execution.
    pub async fn act(&self, id: &str, action: Action) -> Result<ExecutionRow, ActionError> {
        let acted = self.act_many(&[id.to_string()], action).await?;
        let shown = match acted.into_iter().next() {
            Some(Acted { created: Some(new), .. }) => new,
            Some(_) => id.to_string(),
            None => {
                let row = self.execution(id).await?;
                let row = row.ok_or_else(|| ActionError::NotFound(id.to_string()))?;
                return Err(ActionError::Refused {
                    action: action.as_str(),
                    state: row.state,
                });
            }
        };
        self.execution(&shown).await?.ok_or(ActionError::NotFound(shown))
    }

    /// One action on many executions, in one statement: those it applies to in their current
    /// state (a retry: scheduled; a cancel: scheduled or running, the running ones asked to
    /// stop; a re-run: finished) are returned, the others are left as they are. Unknown ids are
    /// skipped like refused ones.
    pub async fn act_many(&self, ids: &[String], action: Action) -> super::Result<Vec<Acted>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let in_ids = placeholders_from(ids.len(), 2);
        let acted: Vec<Acted> = match action {
            Action::Retry | Action::Cancel => {
                let set = if action == Action::Retry {
                    "next_run_at = $1"
                } else {
                    "state = CASE WHEN state = 'scheduled' THEN 'cancelled' ELSE state END,
                     next_run_at = CASE WHEN state = 'scheduled' THEN NULL ELSE next_run_at END,
                     finished_at = CASE WHEN state = 'scheduled' THEN $1 ELSE finished_at END,
                     last_error = CASE WHEN state = 'scheduled' THEN 'cancelled by an operator' ELSE last_error END,
                     cancel_requested = (state = 'running')"
                };
                let states = if action == Action::Retry {
                    "'scheduled'"
                } else {
                    "'scheduled', 'running'"
                };
                let sql = self.driver.sql(format!(
                    "UPDATE executions SET {set} WHERE id IN ({in_ids}) AND state IN ({states}) RETURNING id"
                ));
                let rows: Vec<String> = on_db!(&self.writer, pool => {
                    let mut q = sqlx::query_scalar(&sql).bind(now);
                    for id in ids {
                        q = q.bind(id);
                    }
                    q.fetch_all(pool).await?
                });
                rows.into_iter().map(|id| Acted { id, created: None }).collect()
            }
            Action::Rerun => {
                // A new execution of the same event for each finished one, its attempts its own.
                let sql = self.driver.sql(format!(
                    "INSERT INTO executions (id, event_id, event_type, event_created, livemode, api_version, object_id, state,
                         max_attempts, created_at, scheduled_at, next_run_at, discard_at, rerun_of, account, origin)
                     SELECT v.column1, x.event_id, x.event_type, x.event_created, x.livemode, x.api_version, x.object_id,
                         'scheduled', x.max_attempts, $1, $2, $3, NULL, x.id, x.account, 'rerun'
                     FROM (VALUES {}) AS v JOIN executions x ON x.id = v.column2
                     WHERE x.finished_at IS NOT NULL
                     RETURNING rerun_of, id",
                    values_list(ids.len(), 2, 4)
                ));
                let rows: Vec<(String, String)> = on_db!(&self.writer, pool => {
                    let mut q = sqlx::query_as(&sql).bind(now).bind(now).bind(now);
                    for id in ids {
                        q = q.bind(new_execution_id()).bind(id);
                    }
                    q.fetch_all(pool).await?
                });
                if !rows.is_empty() {
                    self.notify_due().await?;
                }
                rows.into_iter()
                    .map(|(id, new)| Acted { id, created: Some(new) })
                    .collect()
            }
        };
        Ok(acted)
    }
}
