//! Bulk actions over a filter. The preview counts and fixes an upper bound (a cursor just
//! past the newest match), so the confirmed action touches only what was counted and never
//! the executions it creates itself.

use domain::model::{Action, Cursor, ExecutionFilter, State};
use domain::view::{BulkOutcome, BulkPreview, applies_to};

use super::ActionError;
use super::audit::{self, By, Done};
use crate::executor::ExecutorHandle;
use crate::store::Store;

/// The most executions one bulk action may touch.
pub const BULK_MAX: i64 = 10_000;
const BATCH: u32 = 500;

/// The filter narrowed to the states the action applies to; `None` when none is left.
fn eligible(filter: &ExecutionFilter, action: Action) -> Option<ExecutionFilter> {
    let allowed = applies_to(action);
    let statuses: Vec<State> = if filter.statuses.is_empty() {
        allowed.to_vec()
    } else {
        filter
            .statuses
            .iter()
            .copied()
            .filter(|s| allowed.contains(s))
            .collect()
    };
    (!statuses.is_empty()).then(|| ExecutionFilter {
        statuses,
        ..filter.clone()
    })
}

fn check_action(action: Action) -> Result<(), ActionError> {
    match action {
        Action::Retry => Err(ActionError::invalid_action("a bulk action is `rerun` or `cancel`")),
        _ => Ok(()),
    }
}

/// Counts what the action would touch (see [`super::Actions::bulk_preview`]).
pub(super) async fn preview(
    store: &Store,
    filter: &ExecutionFilter,
    action: Action,
) -> Result<BulkPreview, ActionError> {
    check_action(action)?;
    let Some(mut f) = eligible(filter, action) else {
        return Ok(BulkPreview {
            action,
            count: 0,
            too_many: false,
            up_to: None,
        });
    };
    f.cursor = None;
    let count: i64 = store.count_states(&f, BULK_MAX + 1).await?.iter().map(|(_, n)| n).sum();
    f.limit = Some(1);
    let newest = store.list(&f).await?.0.first().map(|r| r.seq);
    Ok(BulkPreview {
        action,
        count: count.min(BULK_MAX),
        too_many: count > BULK_MAX,
        up_to: newest.map(|seq| Cursor::Before(seq + 1).encode()),
    })
}

/// Applies the action and records it in the audit log, with what it changed (also when a
/// database error stops it part way).
pub(super) async fn apply(
    store: &Store,
    executor: &ExecutorHandle,
    by: &By,
    filter: &ExecutionFilter,
    action: Action,
) -> Result<BulkOutcome, ActionError> {
    check_action(action)?;
    if !matches!(filter.cursor, Some(Cursor::Before(_))) {
        return Err(ActionError::invalid_filter(
            "a bulk action needs the bound from its confirmation",
        ));
    }
    let mut outcome = BulkOutcome {
        action,
        applied: 0,
        skipped: 0,
    };
    let Some(f) = eligible(filter, action) else {
        return Ok(outcome);
    };
    let stopped = apply_matching(store, executor, f, action, &mut outcome).await;
    if action == Action::Rerun && outcome.applied > 0 {
        executor.wake();
    }
    tracing::info!(
        action = action.as_str(),
        applied = outcome.applied,
        skipped = outcome.skipped,
        "bulk action"
    );
    let mut described = filter.clone();
    described.cursor = None;
    audit::record(
        store,
        by,
        Done {
            action: format!("bulk-{}", action.as_str()),
            target: &described.query_string(None),
            result_id: None,
            applied: outcome.applied,
            skipped: outcome.skipped,
        },
    )
    .await;
    stopped.map(|()| outcome)
}

/// A batch at a time, each in one statement (`Store::act_many`).
async fn apply_matching(
    store: &Store,
    executor: &ExecutorHandle,
    mut f: ExecutionFilter,
    action: Action,
    outcome: &mut BulkOutcome,
) -> Result<(), ActionError> {
    f.limit = Some(BATCH);
    loop {
        let (rows, more) = store.list(&f).await?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let acted = store.act_many(&ids, action).await?;
        // Those left out changed state since they were listed: nothing was done to them.
        outcome.applied += acted.len() as i64;
        outcome.skipped += (ids.len() - acted.len()) as i64;
        if action == Action::Cancel {
            for a in &acted {
                executor.abort(&a.id);
            }
        }
        match rows.last() {
            Some(last) if more && outcome.applied + outcome.skipped < BULK_MAX => {
                f.cursor = Some(Cursor::Before(last.seq))
            }
            _ => return Ok(()),
        }
    }
}
