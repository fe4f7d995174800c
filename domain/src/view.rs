//! What the console's pages receive, beyond the shared model.

use serde::{Deserialize, Serialize};

use crate::event_types::Waiting;
use crate::model::{Action, Attempt, Execution, ExecutionPage, State};

/// Everything the detail page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionDetail {
    pub execution: Execution,
    pub attempts: Vec<Attempt>,
    /// The event as delivered, pretty-printed.
    pub payload: String,
    pub reruns: Vec<String>,
    /// Why a scheduled execution is not running although due (a paused type, per-object order).
    #[serde(default)]
    pub waiting: Option<Waiting>,
}

/// How many executions of one state match the filter; counts stop at `capped` rows so a
/// huge table never pays for a full count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateCount {
    pub state: State,
    pub count: i64,
    pub capped: bool,
}

/// One page of the executions list with the counts per status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListView {
    pub page: ExecutionPage,
    pub counts: Vec<StateCount>,
    /// The latest reconciliation from Stripe's events list, if any ran.
    pub last_sweep: Option<SweepView>,
    /// The server's clock when the page was read (ms since the epoch): relative times count
    /// from it, so the server's HTML and the hydrated page agree.
    #[serde(default)]
    pub now_ms: Option<i64>,
}

/// One reconciliation run (`deferral reconcile` or the server's sweep), as the overview shows it.
/// Times are RFC 3339.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepView {
    pub started_at: String,
    /// Unset while it runs, or when its process stopped before it finished.
    pub finished_at: Option<String>,
    /// The window: events created at or after this time.
    pub since: String,
    /// `sweep` (the server's periodic one) or `command` (`deferral reconcile`).
    pub trigger: String,
    pub pages: i64,
    /// Events Stripe listed.
    pub seen: i64,
    /// New executions.
    pub added: i64,
    /// Why it stopped early.
    pub error: Option<String>,
    /// Unfinished, and silent for longer than a live run stays: its process died.
    #[serde(default)]
    pub interrupted: bool,
}

/// What a bulk action would do, shown before it is confirmed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkPreview {
    pub action: Action,
    pub count: i64,
    /// More match than a bulk action may touch at once: narrow the filter.
    pub too_many: bool,
    /// Bounds the bulk action to executions that existed when it was previewed (a cursor).
    pub up_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkOutcome {
    pub action: Action,
    pub applied: i64,
    /// Matched but refused: their state changed since the preview.
    pub skipped: i64,
}

/// The label an operator sees for an action.
pub fn action_label(action: Action) -> &'static str {
    match action {
        Action::Retry => "Retry now",
        Action::Rerun => "Re-run",
        Action::Cancel => "Cancel",
    }
}

/// The states an action applies to.
pub fn applies_to(action: Action) -> &'static [State] {
    match action {
        Action::Retry => &[State::Scheduled],
        Action::Rerun => &[State::Succeeded, State::Failed, State::Cancelled, State::Discarded],
        Action::Cancel => &[State::Scheduled, State::Running],
    }
}

/// The values present in the data, for the filter form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facets {
    pub types: Vec<String>,
    pub api_versions: Vec<String>,
    /// Executions per event type (capped like the counts per status), for the type filter.
    #[serde(default)]
    pub type_counts: Vec<TypeCount>,
}

/// How many executions one event type has; `capped`: at least `count`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeCount {
    pub event_type: String,
    pub count: i64,
    pub capped: bool,
}

/// What a console login may do: an operator acts, a viewer only browses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Operator,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    /// Only an operator retries, re-runs or cancels.
    pub fn can_act(self) -> bool {
        self == Role::Operator
    }
}

/// The signed-in session, as the pages see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub role: Role,
}

impl SessionInfo {
    pub fn can_act(&self) -> bool {
        self.role.can_act()
    }
}

/// One operator action on record: who (role, session, address), when, what and how many.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Order of recording; the REST API's cursor is built from it.
    pub seq: i64,
    /// RFC 3339.
    pub at: String,
    /// `operator` (the console) or `api` (a bearer token).
    pub role: String,
    /// The console session that acted (none for the REST API).
    pub session_id: Option<String>,
    /// The client's address (behind a trusted proxy, the one it forwarded).
    pub address: String,
    /// `retry`, `rerun`, `cancel`, `bulk-rerun` or `bulk-cancel`.
    pub action: String,
    /// The execution acted on, or for a bulk action the filter it applied to (a query string).
    pub target: String,
    /// The execution a re-run created.
    pub result_id: Option<String>,
    /// Executions the action changed.
    pub applied: i64,
    /// Bulk actions: matched but left alone, their state having changed since the preview.
    pub skipped: i64,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub data: Vec<AuditEntry>,
    /// Cursor for the next (older) page.
    pub next_cursor: Option<String>,
}
