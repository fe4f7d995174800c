//! What the console's pages receive, beyond the shared model.

use serde::{Deserialize, Serialize};

use crate::model::{Action, ExecutionPage, State};

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
    /// The server's clock when the page was read (ms since the epoch): relative times count
    /// from it, so the server's HTML and the hydrated page agree.
    #[serde(default)]
    pub now_ms: Option<i64>,
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
