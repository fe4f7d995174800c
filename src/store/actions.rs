//! Operators' actions on one execution. Refused ones change nothing.

use domain::model::{Action, State};

use super::rows::ExecutionRow;
use super::{Store, now_ms, on_db};

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

impl Store {
    /// Operator actions. Refused ones change nothing.
    pub async fn act(&self, id: &str, action: Action) -> Result<ExecutionRow, ActionError> {
        let now = now_ms();
        let row = self
            .execution(id)
            .await?
            .ok_or_else(|| ActionError::NotFound(id.to_string()))?;
        let refused = |state| ActionError::Refused {
            action: action.as_str(),
            state,
        };
        let changed = match action {
            Action::Retry => on_db!(&self.writer, pool => sqlx::query(
                "UPDATE executions SET next_run_at = $1 WHERE id = $2 AND state = 'scheduled'",
            ).bind(now).bind(id).execute(pool).await.map_err(super::StoreError::from)?.rows_affected()),
            Action::Cancel => on_db!(&self.writer, pool => sqlx::query(
                "UPDATE executions SET
                     state = CASE WHEN state = 'scheduled' THEN 'cancelled' ELSE state END,
                     next_run_at = CASE WHEN state = 'scheduled' THEN NULL ELSE next_run_at END,
                     finished_at = CASE WHEN state = 'scheduled' THEN $1 ELSE finished_at END,
                     last_error = CASE WHEN state = 'scheduled' THEN 'cancelled by an operator' ELSE last_error END,
                     cancel_requested = (state = 'running')
                 WHERE id = $2 AND state IN ('scheduled', 'running')",
            ).bind(now).bind(id).execute(pool).await.map_err(super::StoreError::from)?.rows_affected()),
            Action::Rerun => {
                if !row.state().is_final() {
                    return Err(refused(row.state()));
                }
                let new_id = super::ingest::new_execution_id();
                let max_attempts = row.max_attempts;
                on_db!(&self.writer, pool => sqlx::query(super::ingest::INSERT_RERUN)
                    .bind(&new_id)
                    .bind(&row.event_id)
                    .bind(&row.event_type)
                    .bind(row.event_created)
                    .bind(row.livemode)
                    .bind(&row.api_version)
                    .bind(&row.object_id)
                    .bind(max_attempts)
                    .bind(now)
                    .bind(now)
                    .bind(None::<i64>)
                    .bind(&row.id)
                    .bind(&row.account)
                    .execute(pool)
                    .await
                    .map(|_| ())
                    .map_err(super::StoreError::from)?);
                self.notify_due().await?;
                return self.execution(&new_id).await?.ok_or(ActionError::NotFound(new_id));
            }
        };
        if changed == 0 {
            let state = self.execution(id).await?.map_or(row.state(), |r| r.state());
            return Err(refused(state));
        }
        self.execution(id)
            .await?
            .ok_or_else(|| ActionError::NotFound(id.to_string()))
    }
}
