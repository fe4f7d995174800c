//! An execution as stored, and as the API and the console show it.

use domain::model::{Execution, Origin, State};

/// An execution row as stored.
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct ExecutionRow {
    pub seq: i64,
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub event_created: i64,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub object_id: Option<String>,
    /// A state the column's CHECK does not admit is a decoding error, never a guess.
    #[sqlx(try_from = "String")]
    pub state: State,
    pub attempts: i64,
    /// How many attempts this execution gets: fixed when it is created (the process setting
    /// then, or the re-run execution's), the one figure the executor and the rescuer read.
    pub max_attempts: i64,
    pub created_at: i64,
    pub scheduled_at: i64,
    /// When due. Kept while running (the time it was due); cleared once finished.
    pub next_run_at: Option<i64>,
    pub discard_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub last_error: Option<String>,
    pub result: Option<String>,
    pub source: Option<String>,
    pub rerun_of: Option<String>,
    /// `webhook`, `reconciled` or `rerun` (migration 0010).
    #[sqlx(try_from = "String")]
    pub origin: Origin,
    /// The Connect account of the event (`acct_…`), for connected accounts' events.
    pub account: Option<String>,
}

/// The columns of `ExecutionRow`, as a literal so that `concat!` can extend it.
macro_rules! execution_columns {
    () => {
        "seq, id, event_id, event_type, event_created, livemode, api_version, object_id, state, attempts, max_attempts, created_at, scheduled_at, next_run_at, discard_at, started_at, finished_at, last_error, result, source, rerun_of, origin, account"
    };
}

pub(super) const COLUMNS: &str = execution_columns!();

/// A column of the claimed execution's event, as a scalar subquery (`event_id` is the row's).
macro_rules! event_column {
    ($column:literal) => {
        concat!("(SELECT ev.", $column, " FROM events ev WHERE ev.id = event_id)")
    };
}
pub(super) use event_column;

/// What a claim returns: the row, and its event's stored payload, read in the same statement
/// (a scalar subquery in `RETURNING`; `event_id` is the claimed row's).
pub(super) const CLAIMED_COLUMNS: &str = concat!(execution_columns!(), ", ", event_column!("payload"), " AS payload");

/// A claimed row as a driver reads it.
#[derive(sqlx::FromRow, serde::Deserialize)]
pub(crate) struct ClaimedRow {
    #[sqlx(flatten)]
    pub(super) row: ExecutionRow,
    pub(super) payload: Option<String>,
}

/// An execution a worker has claimed, with what its handler needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub row: ExecutionRow,
    pub payload: String,
    pub account: Option<String>,
}

impl From<ClaimedRow> for Claimed {
    fn from(c: ClaimedRow) -> Self {
        Claimed {
            account: c.row.account.clone(),
            row: c.row,
            payload: c.payload.unwrap_or_default(),
        }
    }
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl ExecutionRow {
    pub fn state(&self) -> State {
        self.state
    }

    pub fn origin(&self) -> Origin {
        self.origin
    }

    pub fn to_view(&self, duration_us: Option<i64>) -> Execution {
        Execution {
            id: self.id.clone(),
            state: self.state,
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            livemode: self.livemode,
            api_version: self.api_version.clone(),
            object_id: self.object_id.clone(),
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            created_at: rfc3339(self.created_at),
            scheduled_at: rfc3339(self.scheduled_at),
            // Kept while running (the time it was due, see `SET_RUNNING`); only a scheduled one has a next run.
            next_run_at: self.next_run_at.filter(|_| self.state == State::Scheduled).map(rfc3339),
            started_at: self.started_at.map(rfc3339),
            finished_at: self.finished_at.map(rfc3339),
            duration_ms: duration_us.map(|us| us as f64 / 1000.0),
            last_error: self.last_error.clone(),
            result: self.result.clone(),
            source: self.source.clone(),
            rerun_of: self.rerun_of.clone(),
            origin: self.origin,
            account: self.account.clone(),
        }
    }
}
