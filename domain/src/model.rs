//! The plain data the console and the REST API exchange with the server.
//! No SQL and no server types here: `src/` fills these in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

// The filter was written here first; its paths stay.
pub(crate) use crate::filter::shown;
pub use crate::filter::{
    Cursor, DEFAULT_PAGE_SIZE, ExecutionFilter, MAX_FILTER_PAIRS, MAX_FILTER_TYPES, MAX_FILTER_VALUE_LEN,
    MAX_PAGE_SIZE, check_filter_pair, encode_component, parse_time_bound,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Scheduled,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Discarded,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Scheduled,
        State::Running,
        State::Succeeded,
        State::Failed,
        State::Cancelled,
        State::Discarded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Scheduled => "scheduled",
            State::Running => "running",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
            State::Discarded => "discarded",
        }
    }

    /// Finished: nothing will run unless someone re-runs it.
    pub fn is_final(self) -> bool {
        !matches!(self, State::Scheduled | State::Running)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        State::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| {
            format!(
                "unknown status `{}` (one of scheduled, running, succeeded, failed, cancelled, discarded)",
                shown(s)
            )
        })
    }
}

impl PartialEq<&str> for State {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// As the database stores it: an unknown state is an error, never a guess.
impl TryFrom<String> for State {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// Where an execution came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Delivered by Stripe to the webhook endpoint.
    Webhook,
    /// Found in Stripe's events list (`GET /v1/events`) by `deferral reconcile` or the sweep.
    Reconciled,
    /// Created by an operator re-running a finished execution.
    Rerun,
}

impl Origin {
    pub const ALL: [Origin; 3] = [Origin::Webhook, Origin::Reconciled, Origin::Rerun];

    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Webhook => "webhook",
            Origin::Reconciled => "reconciled",
            Origin::Rerun => "rerun",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Origin {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Origin::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("unknown origin `{}` (one of webhook, reconciled, rerun)", shown(s)))
    }
}

impl TryFrom<String> for Origin {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// One execution as the API and the console show it. Times are RFC 3339.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub id: String,
    pub state: State,
    pub event_id: String,
    pub event_type: String,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub object_id: Option<String>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub created_at: String,
    pub scheduled_at: String,
    pub next_run_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Of the latest finished attempt, in milliseconds.
    pub duration_ms: Option<f64>,
    pub last_error: Option<String>,
    pub result: Option<String>,
    /// Where the handler read the event from: `api` or `payload`.
    pub source: Option<String>,
    pub rerun_of: Option<String>,
    pub origin: Origin,
    /// The Connect account the event belongs to (`acct_…`), for connected accounts' events.
    #[serde(default)]
    pub account: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub number: i64,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: f64,
    /// `succeeded`, `error`, `lost` (worker died) or `aborted` (cancelled while running).
    pub outcome: String,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
}

/// One page of a filtered list, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionPage {
    pub data: Vec<Execution>,
    /// Cursor for the next (older) page.
    pub next_cursor: Option<String>,
    /// Cursor for the previous (newer) page, when this is not the first.
    pub prev_cursor: Option<String>,
}

/// What an operator can do to one execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A scheduled execution runs now.
    Retry,
    /// A finished execution runs again as a new execution.
    Rerun,
    /// A scheduled one stops; a running one is aborted.
    Cancel,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Retry => "retry",
            Action::Rerun => "rerun",
            Action::Cancel => "cancel",
        }
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "retry" => Ok(Action::Retry),
            "rerun" => Ok(Action::Rerun),
            "cancel" => Ok(Action::Cancel),
            other => Err(format!("unknown action `{other}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_round_trips_through_the_query() {
        let f = ExecutionFilter::from_pairs([
            ("livemode", "false"),
            ("type", "invoice.paid"),
            ("type", "charge.failed"),
            ("status", "failed"),
            ("api_version", "2024-06-20"),
            ("q", "evt 1&2"),
            ("account", "acct_1Connected"),
        ])
        .unwrap();
        assert_eq!(f.account.as_deref(), Some("acct_1Connected"));
        assert!(f.query_string(None).contains("account=acct_1Connected"));
        assert_eq!(f.livemode, Some(false));
        assert_eq!(f.types, vec!["charge.failed", "invoice.paid"]);
        assert_eq!(f.statuses, vec![State::Failed]);
        let qs = f.query_string(None);
        assert!(qs.contains("q=evt%201%262"), "{qs}");
        let f =
            ExecutionFilter::from_pairs([("origin", "rerun"), ("origin", "reconciled"), ("origin", "rerun")]).unwrap();
        assert_eq!(f.origins, vec![Origin::Reconciled, Origin::Rerun]);
        assert_eq!(f.query_string(None), "origin=reconciled&origin=rerun");
    }

    #[test]
    fn filter_rejects_unknown_values() {
        assert!(ExecutionFilter::from_pairs([("status", "done")]).is_err());
        assert!(ExecutionFilter::from_pairs([("livemode", "yes")]).is_err());
        assert!(ExecutionFilter::from_pairs([("cursor", "zz")]).is_err());
        assert!(ExecutionFilter::from_pairs([("limit", "0")]).is_err());
        assert!(ExecutionFilter::from_pairs([("colour", "red")]).is_err());
        assert!(ExecutionFilter::from_pairs([("origin", "email")]).is_err());
        assert!(ExecutionFilter::from_pairs([("account", "cus_1")]).is_err());
        assert!(ExecutionFilter::from_pairs([("account", "acct_1'; --")]).is_err());
        assert!(ExecutionFilter::from_pairs([("account", "acct_")]).is_err());
    }

    #[test]
    fn filter_lists_are_deduplicated_and_capped() {
        let same = vec![("type", "invoice.paid"); MAX_FILTER_PAIRS];
        assert_eq!(ExecutionFilter::from_pairs(same).unwrap().types, vec!["invoice.paid"]);
        let too_many = vec![("status", "failed"); MAX_FILTER_PAIRS + 1];
        assert!(
            ExecutionFilter::from_pairs(too_many)
                .unwrap_err()
                .contains("too many filter parameters")
        );
        let types: Vec<String> = (0..=MAX_FILTER_TYPES).map(|i| format!("t{i}")).collect();
        let err = ExecutionFilter::from_pairs(types.iter().map(|t| ("type", t.as_str()))).unwrap_err();
        assert!(err.contains("too many event types"), "{err}");
        let long = "x".repeat(MAX_FILTER_VALUE_LEN + 1);
        assert!(
            ExecutionFilter::from_pairs([("q", long.as_str())])
                .unwrap_err()
                .contains("longer than")
        );
        let key = "k".repeat(10_000);
        assert!(ExecutionFilter::from_pairs([(key.as_str(), "1")]).unwrap_err().len() < 200);
    }

    #[test]
    fn one_check_for_filters_read_from_a_url_and_filters_sent_whole() {
        // Read from a URL: the time bounds are checked too.
        assert!(ExecutionFilter::from_pairs([("from", "2026-11-29T14:00")]).is_ok());
        assert!(ExecutionFilter::from_pairs([("to", "2026-11-29T14:00:00+01:00")]).is_ok());
        let err = ExecutionFilter::from_pairs([("from", "yesterday")]).unwrap_err();
        assert!(err.contains("invalid `from` time `yesterday`"), "{err}");
        // Sent whole (the console's list takes JSON): held to the same rules.
        let whole = |f: ExecutionFilter| f.validate().unwrap_err();
        let types: Vec<String> = (0..=MAX_FILTER_TYPES).map(|i| format!("t{i}")).collect();
        assert!(
            whole(ExecutionFilter {
                types,
                ..Default::default()
            })
            .contains("too many event types")
        );
        let long = Some("x".repeat(MAX_FILTER_VALUE_LEN + 1));
        assert!(
            whole(ExecutionFilter {
                q: long,
                ..Default::default()
            })
            .contains("`q` is longer than")
        );
        let account = Some("acct_1'; --".to_string());
        assert!(
            whole(ExecutionFilter {
                account,
                ..Default::default()
            })
            .contains("invalid account")
        );
        assert!(
            whole(ExecutionFilter {
                limit: Some(0),
                ..Default::default()
            })
            .contains("limit must be")
        );
        let to = Some("2026-13-01".to_string());
        assert!(
            whole(ExecutionFilter {
                to,
                ..Default::default()
            })
            .contains("invalid `to` time")
        );
        let statuses = vec![State::Failed; MAX_FILTER_PAIRS + 1];
        assert!(
            whole(ExecutionFilter {
                statuses,
                ..Default::default()
            })
            .contains("too many filter parameters")
        );
        assert_eq!(ExecutionFilter::default().validate(), Ok(()));
    }

    #[test]
    fn time_bounds_read_rfc3339_and_date_time_inputs_in_utc() {
        assert_eq!(parse_time_bound("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_time_bound("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_time_bound("1970-01-01T00:01"), Some(60_000));
        assert_eq!(parse_time_bound("1970-01-01T00:00:02"), Some(2000));
        assert_eq!(parse_time_bound("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_time_bound("1970-01-02 junk"), None);
        assert_eq!(parse_time_bound(""), None);
    }

    #[test]
    fn cursors_are_a_direction_and_digits() {
        for bad in [
            "",
            "b",
            "b-1",
            "b+1",
            "b 1",
            "x1",
            "é1",
            "b99999999999999999999",
            "b1.0",
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_encode_direction() {
        assert_eq!(Cursor::decode(&Cursor::Before(42).encode()), Ok(Cursor::Before(42)));
        assert_eq!(Cursor::decode("a7"), Ok(Cursor::After(7)));
    }
}
