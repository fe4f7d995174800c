//! What may start, in SQL both drivers build their claims from: the rules are one, the way
//! each backend takes the rows (`sqlite/queue.rs`, `postgres/queue.rs`) differs.

use super::placeholders_from;

/// A scheduled execution may start only when no other unfinished execution for the same
/// Stripe object is running or comes before it (event `created`, then arrival). Unfinished is
/// `finished_at IS NULL`, the condition of the `executions_object_active` index.
pub(super) const OBJECT_IS_FREE: &str = "(e.object_id IS NULL OR NOT EXISTS (
    SELECT 1 FROM executions o
    WHERE o.object_id = e.object_id AND o.finished_at IS NULL AND o.seq <> e.seq
      AND (o.state = 'running' OR o.event_created < e.event_created
           OR (o.event_created = e.event_created AND o.seq < e.seq))))";

/// Past its discard deadline without a start: left for the discarder, never started late.
const NOT_OVERDUE: &str = "(e.discard_at IS NULL OR e.attempts > 0 OR e.discard_at >= $1)";

/// Only columns no index reads (migration 0005): on PostgreSQL the claim is then a HOT update,
/// which writes no index entry. `next_run_at` keeps the time the execution was due, so the row
/// stays in `executions_due`; claimers skip it by its state.
pub(super) const SET_RUNNING: &str = "state = 'running', attempts = attempts + 1, started_at = $1,
    lease_owner = $2, lease_expires_at = $3, cancel_requested = FALSE";

/// Why a rescued attempt ended.
pub(super) const LEASE_EXPIRED: &str = "lease expired: the worker running this attempt stopped";

/// Not held by a paused event type (issue 18; `store::pauses`). Nothing to do per row without a pause.
fn not_held() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| super::pauses::not_paused("e.event_type"))
}

/// `FROM … WHERE …` of the executions a claim may start now (`$1`: now): due, scheduled, not
/// overdue, their object free; `from` names the table (with a driver's index hint), `extra`
/// narrows it further. Claims and the executor's watchdog (`claimable_exists`) read the same set.
pub(super) fn startable_now(from: &str, extra: &str) -> String {
    format!(
        "FROM {from} WHERE e.finished_at IS NULL AND e.next_run_at <= $1 AND e.state = 'scheduled' AND {NOT_OVERDUE} AND {OBJECT_IS_FREE}{extra} AND {}",
        not_held()
    )
}

/// ` AND e.event_type NOT IN ($first, …)`, or nothing.
pub(super) fn skip_clause(skip_types: &[String], first: usize) -> String {
    if skip_types.is_empty() {
        return String::new();
    }
    format!(
        " AND e.event_type NOT IN ({})",
        placeholders_from(skip_types.len(), first)
    )
}

/// The running executions of the type in placeholder `ty`, which a limited claim keeps under its limit.
pub(super) fn running_of_type(ty: &str) -> String {
    format!(
        "(SELECT COUNT(*) FROM executions r WHERE r.finished_at IS NULL AND r.state = 'running' AND r.event_type = {ty})"
    )
}

/// ` AND NOT (e.event_type = $k AND <running of $k> >= $k+1)` for `limited` (type, limit) pairs
/// bound from `$first`: a type with a concurrency limit counts as claimable only below its limit
/// (a claim of it then starts something: `claim_type`).
pub(super) fn below_limit_clause(limited: usize, first: usize) -> String {
    (0..limited)
        .map(|i| {
            let (ty, limit) = (format!("${}", first + 2 * i), first + 2 * i + 1);
            format!(
                " AND NOT (e.event_type = {ty} AND {} >= ${limit})",
                running_of_type(&ty)
            )
        })
        .collect()
}
