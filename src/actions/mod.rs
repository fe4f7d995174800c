//! Operator actions, one service for every caller: retry now, re-run and cancel one execution,
//! re-run or cancel everything a filter matches (bulk), pause and resume event types.
//!
//! The REST API (`src/api/`) and the console (`src/console/`) both call [`Actions`]; each only
//! authenticates its caller (a bearer token; a console session), names who acts ([`By`]) and
//! turns an [`ActionError`] into its own answer: the REST API into `{"error": code}` with an HTTP
//! status (`http::error`), the console into a `ConsoleError`. So the same refusal reads the same
//! from both. The service checks what an action may touch (a viewer may not act, filters and
//! patterns are valid, a bulk action is bounded), applies it through the store, tells the
//! executor (wake for new work, abort a local attempt) and puts it on record ([`audit`]).

pub mod audit;
mod bulk;

use domain::event_types::Pause;
use domain::model::{Action, Execution, ExecutionFilter};
use domain::view::{BulkOutcome, BulkPreview};

pub use audit::By;
pub use bulk::BULK_MAX;

use crate::executor::ExecutorHandle;
use crate::store::{PauseError, Store, StoreError};
use audit::Done;

/// Why an action was not carried out. Each has a stable [`code`](ActionError::code), the one the
/// REST API answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// A console viewer: it may browse but not act.
    #[error("{0}")]
    Forbidden(String),
    /// No such execution.
    #[error("{0}")]
    NotFound(String),
    /// The action does not apply to the execution in its current state; nothing changed.
    #[error("{0}")]
    Refused(String),
    /// Resuming what is not paused.
    #[error("{0}")]
    NotPaused(String),
    /// Bad input; `code` says which: `invalid_filter`, `invalid_pattern` or `invalid_action`.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// The database did not answer (details are in the log).
    #[error("the database is unavailable; try again")]
    Unavailable,
    /// Anything else (details are in the log).
    #[error("internal error; see the server log")]
    Internal,
}

impl ActionError {
    pub fn code(&self) -> &'static str {
        match self {
            ActionError::Forbidden(_) => "forbidden",
            ActionError::NotFound(_) => "not_found",
            ActionError::Refused(_) => "refused",
            ActionError::NotPaused(_) => "not_paused",
            ActionError::Invalid { code, .. } => code,
            ActionError::Unavailable => "unavailable",
            ActionError::Internal => "internal",
        }
    }

    pub(crate) fn invalid_filter(message: impl Into<String>) -> Self {
        ActionError::Invalid {
            code: "invalid_filter",
            message: message.into(),
        }
    }

    pub(crate) fn invalid_action(message: impl Into<String>) -> Self {
        ActionError::Invalid {
            code: "invalid_action",
            message: message.into(),
        }
    }
}

/// Database trouble, as callers see it: unavailable or internal (details go to the log, once).
impl From<StoreError> for ActionError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "operator action: database error");
        if e.is_unavailable() {
            ActionError::Unavailable
        } else {
            ActionError::Internal
        }
    }
}

/// The operator actions over one store, telling one process's executor.
#[derive(Clone)]
pub struct Actions {
    store: Store,
    executor: ExecutorHandle,
}

impl Actions {
    pub fn new(store: Store, executor: ExecutorHandle) -> Self {
        Actions { store, executor }
    }

    fn may_act(by: &By) -> Result<(), ActionError> {
        if by.may_act() {
            return Ok(());
        }
        tracing::warn!(?by, "a viewer's action refused");
        Err(ActionError::Forbidden("this login can browse but not act".into()))
    }

    /// Retries now, re-runs or cancels one execution, tells the executor (wake for new work,
    /// abort a local attempt) and records it. Answers the changed execution, or for a re-run the
    /// new one.
    pub async fn act(&self, by: &By, id: &str, action: Action) -> Result<Execution, ActionError> {
        use crate::store::ActionError as StoreActionError;
        Self::may_act(by)?;
        let row = self.store.act(id, action).await.map_err(|e| match e {
            StoreActionError::NotFound(id) => ActionError::NotFound(format!("no execution `{id}`")),
            refused @ StoreActionError::Refused { .. } => ActionError::Refused(refused.to_string()),
            StoreActionError::Store(e) => e.into(),
        })?;
        match action {
            Action::Cancel => {
                self.executor.abort(id);
            }
            Action::Retry | Action::Rerun => self.executor.wake(),
        }
        audit::record(
            &self.store,
            by,
            Done {
                action: action.as_str().into(),
                target: id,
                // A re-run answers the execution it created.
                result_id: (row.id != id).then_some(row.id.as_str()),
                applied: 1,
                skipped: 0,
            },
        )
        .await;
        Ok(self.store.views(std::slice::from_ref(&row)).await?.remove(0))
    }

    /// How many executions matching `filter` a bulk action would apply to, and the bound that
    /// keeps it to them (for the confirmation).
    pub async fn bulk_preview(&self, filter: &ExecutionFilter, action: Action) -> Result<BulkPreview, ActionError> {
        filter.validate().map_err(ActionError::invalid_filter)?;
        bulk::preview(&self.store, filter, action).await
    }

    /// Applies a confirmed bulk action (the filter's cursor is the preview's bound) and records
    /// it, with what it changed (also when a database error stops it part way).
    pub async fn bulk_apply(
        &self,
        by: &By,
        filter: &ExecutionFilter,
        action: Action,
    ) -> Result<BulkOutcome, ActionError> {
        Self::may_act(by)?;
        filter.validate().map_err(ActionError::invalid_filter)?;
        bulk::apply(&self.store, &self.executor, by, filter, action).await
    }

    /// Pauses (`paused`) or resumes a type or prefix pattern, wakes the executor when held
    /// executions may run again, and records it.
    pub async fn set_paused(&self, by: &By, pattern: &str, paused: bool) -> Result<Pause, ActionError> {
        Self::may_act(by)?;
        let result = if paused {
            self.store.pause(pattern, by.role()).await
        } else {
            self.store.resume(pattern).await
        };
        let pause = result.map_err(|e| match e {
            PauseError::Invalid(message) => ActionError::Invalid {
                code: "invalid_pattern",
                message,
            },
            not @ PauseError::NotPaused { .. } => ActionError::NotPaused(not.to_string()),
            PauseError::Store(e) => e.into(),
        })?;
        if !paused {
            self.executor.wake();
        }
        audit::record(
            &self.store,
            by,
            Done {
                action: if paused { "pause" } else { "resume" }.into(),
                target: pattern,
                result_id: None,
                applied: 1,
                skipped: 0,
            },
        )
        .await;
        Ok(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_a_stable_code() {
        let cases = [
            (ActionError::Forbidden("x".into()), "forbidden"),
            (ActionError::NotFound("x".into()), "not_found"),
            (ActionError::Refused("x".into()), "refused"),
            (ActionError::NotPaused("x".into()), "not_paused"),
            (ActionError::invalid_filter("x"), "invalid_filter"),
            (ActionError::invalid_action("x"), "invalid_action"),
            (ActionError::Unavailable, "unavailable"),
            (ActionError::Internal, "internal"),
        ];
        for (e, code) in cases {
            assert_eq!(e.code(), code, "{e:?}");
        }
    }
}
