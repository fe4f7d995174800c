//! The plain data the console and the REST API exchange with the server.
//! No SQL and no server types here: `src/` fills these in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
    pub waiting: Option<crate::event_types::Waiting>,
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

/// Which way a cursor pages: older than a row, or newer than it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cursor {
    Before(i64),
    After(i64),
}

impl Cursor {
    pub fn encode(self) -> String {
        match self {
            Cursor::Before(seq) => format!("b{seq}"),
            Cursor::After(seq) => format!("a{seq}"),
        }
    }

    /// Reads `b<seq>` or `a<seq>`: a direction and at most 19 decimal digits, nothing else.
    pub fn decode(s: &str) -> Result<Cursor, String> {
        let bad = || format!("invalid cursor `{}`", shown(s));
        let (dir, seq) = s.split_at_checked(1).ok_or_else(bad)?;
        if seq.is_empty() || seq.len() > 19 || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let seq: i64 = seq.parse().map_err(|_| bad())?;
        match dir {
            "b" => Ok(Cursor::Before(seq)),
            "a" => Ok(Cursor::After(seq)),
            _ => Err(bad()),
        }
    }
}

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;

/// Most query parameters a filter is read from (repeats included): the cost of reading a filter
/// stays bounded whatever the URL holds.
pub const MAX_FILTER_PAIRS: usize = 100;
/// Most distinct event types one filter may ask for (duplicates count once).
pub const MAX_FILTER_TYPES: usize = 50;
/// Longest value of one filter parameter: ids, types and versions are far shorter.
pub const MAX_FILTER_VALUE_LEN: usize = 255;

/// The caps every filter read from a URL shares (executions and records), so that reading one
/// costs a bounded amount whatever the URL holds: pair number `index` (from 0) must be within
/// [`MAX_FILTER_PAIRS`] and its (trimmed) value at most [`MAX_FILTER_VALUE_LEN`] bytes.
pub fn check_filter_pair(index: usize, key: &str, value: &str) -> Result<(), String> {
    if index >= MAX_FILTER_PAIRS {
        return Err(format!("too many filter parameters (at most {MAX_FILTER_PAIRS})"));
    }
    if value.len() > MAX_FILTER_VALUE_LEN {
        return Err(format!("`{}` is longer than {MAX_FILTER_VALUE_LEN} bytes", shown(key)));
    }
    Ok(())
}

/// At most 64 characters of `s`, for error messages that quote the input.
pub(crate) fn shown(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_string(),
    }
}

/// A filter over executions, written in the URL with the REST API's parameter names:
/// `livemode=true|false`, `type` (repeatable), `api_version`, `account`, `status` (repeatable),
/// `origin` (repeatable), `q`, `from`, `to`, `cursor`, `limit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutionFilter {
    pub livemode: Option<bool>,
    pub types: Vec<String>,
    pub api_version: Option<String>,
    /// A Connect account id (`acct_…`).
    #[serde(default)]
    pub account: Option<String>,
    pub statuses: Vec<State>,
    /// `webhook`, `reconciled`, `rerun`; empty: any.
    #[serde(default)]
    pub origins: Vec<Origin>,
    /// An execution id, event id or object id.
    pub q: Option<String>,
    /// Created at or after (RFC 3339, or `YYYY-MM-DDTHH:MM` from a date-time input, UTC).
    pub from: Option<String>,
    /// Created before.
    pub to: Option<String>,
    pub cursor: Option<Cursor>,
    pub limit: Option<u32>,
}

impl ExecutionFilter {
    /// Reads a filter from query pairs; unknown parameters or values are errors, and so are more
    /// than [`MAX_FILTER_PAIRS`] pairs and values longer than [`MAX_FILTER_VALUE_LEN`]. Repeated
    /// types and statuses count once. What it reads is then held to [`ExecutionFilter::validate`].
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        let mut f = ExecutionFilter::default();
        for (index, (key, value)) in pairs.into_iter().enumerate() {
            let value = value.trim();
            check_filter_pair(index, key, value)?;
            let set = |v: &str| (!v.is_empty()).then(|| v.to_string());
            match key {
                "livemode" => {
                    f.livemode = match value {
                        "true" => Some(true),
                        "false" => Some(false),
                        "" | "all" => None,
                        other => return Err(format!("invalid livemode `{}` (true, false or all)", shown(other))),
                    }
                }
                "type" => f.types.extend(set(value)),
                "api_version" => f.api_version = set(value),
                "account" => f.account = set(value),
                "status" if value.is_empty() => {}
                "status" => f.statuses.push(value.parse()?),
                "origin" if value.is_empty() => {}
                "origin" => f.origins.push(value.parse()?),
                "q" => f.q = set(value),
                "from" => f.from = set(value),
                "to" => f.to = set(value),
                "cursor" if value.is_empty() => {}
                "cursor" => f.cursor = Some(Cursor::decode(value)?),
                "limit" => f.limit = Some(value.parse().map_err(|_| format!("invalid limit `{}`", shown(value)))?),
                other => return Err(format!("unknown filter parameter `{}`", shown(other))),
            }
        }
        f.types.sort();
        f.types.dedup();
        f.statuses.sort();
        f.statuses.dedup();
        f.origins.sort();
        f.origins.dedup();
        f.validate()?;
        Ok(f)
    }

    /// The one check of an executions filter, wherever it comes from: read from a URL (the REST
    /// API, a console page: [`ExecutionFilter::from_pairs`] ends with it) or sent whole (the
    /// console's list takes it as JSON). The message says what is wrong:
    /// - at most [`MAX_FILTER_TYPES`] different event types, no value longer than
    ///   [`MAX_FILTER_VALUE_LEN`] bytes, and no more parameters than a URL may carry;
    /// - `account` is a Connect account id (`acct_…`);
    /// - `limit` is between 1 and [`MAX_PAGE_SIZE`];
    /// - `from` and `to` are times [`parse_time_bound`] reads.
    ///
    /// A filter that passes is one the store can run: no input error is left for it to find.
    pub fn validate(&self) -> Result<(), String> {
        let texts = [
            ("api_version", &self.api_version),
            ("account", &self.account),
            ("q", &self.q),
            ("from", &self.from),
            ("to", &self.to),
        ];
        let values = self.types.iter().map(|t| ("type", t.as_str()));
        for (key, value) in values.chain(texts.iter().filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))) {
            if value.len() > MAX_FILTER_VALUE_LEN {
                return Err(format!("`{key}` is longer than {MAX_FILTER_VALUE_LEN} bytes"));
            }
        }
        // Sent whole, a filter may repeat itself; a URL's are deduplicated when read.
        let types: std::collections::BTreeSet<&String> = self.types.iter().collect();
        if types.len() > MAX_FILTER_TYPES {
            return Err(format!(
                "too many event types (at most {MAX_FILTER_TYPES} different ones)"
            ));
        }
        let singles = [self.livemode.is_some(), self.cursor.is_some(), self.limit.is_some()];
        let pairs = self.types.len()
            + self.statuses.len()
            + self.origins.len()
            + texts.iter().filter(|(_, v)| v.is_some()).count()
            + singles.iter().filter(|s| **s).count();
        if pairs > MAX_FILTER_PAIRS {
            return Err(format!("too many filter parameters (at most {MAX_FILTER_PAIRS})"));
        }
        if let Some(account) = &self.account {
            check_account_id(account)?;
        }
        if self.limit.is_some_and(|n| n == 0 || n > MAX_PAGE_SIZE) {
            return Err(format!("limit must be between 1 and {MAX_PAGE_SIZE}"));
        }
        for (name, bound) in [("from", &self.from), ("to", &self.to)] {
            if let Some(v) = bound
                && parse_time_bound(v).is_none()
            {
                return Err(format!(
                    "invalid `{name}` time `{}` (RFC 3339, e.g. 2026-11-29T14:00:00Z, or YYYY-MM-DDTHH:MM in UTC)",
                    shown(v)
                ));
            }
        }
        Ok(())
    }

    /// The filter as query pairs (without the cursor), for links and forms.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(l) = self.livemode {
            out.push(("livemode", l.to_string()));
        }
        out.extend(self.types.iter().map(|t| ("type", t.clone())));
        out.extend(self.api_version.iter().map(|v| ("api_version", v.clone())));
        out.extend(self.account.iter().map(|v| ("account", v.clone())));
        out.extend(self.statuses.iter().map(|s| ("status", s.to_string())));
        out.extend(self.origins.iter().map(|o| ("origin", o.to_string())));
        out.extend(self.q.iter().map(|v| ("q", v.clone())));
        out.extend(self.from.iter().map(|v| ("from", v.clone())));
        out.extend(self.to.iter().map(|v| ("to", v.clone())));
        out
    }

    /// A URL query string for this filter with the given cursor.
    pub fn query_string(&self, cursor: Option<&str>) -> String {
        let mut pairs = self.to_pairs();
        if let Some(c) = cursor {
            pairs.push(("cursor", c.to_string()));
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_component(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    pub fn page_size(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_PAGE_SIZE)
    }
}

/// A Connect account id as Stripe writes them: `acct_` and letters and digits.
fn check_account_id(value: &str) -> Result<(), String> {
    let tail = value.strip_prefix("acct_").unwrap_or_default();
    if !tail.is_empty() && value.len() <= 255 && tail.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(format!(
            "invalid account `{}` (a Connect account id: acct_ and letters or digits)",
            value.chars().take(64).collect::<String>()
        ))
    }
}

/// Reads a `from`/`to` bound into unix milliseconds: RFC 3339, or `YYYY-MM-DDTHH:MM[:SS]` /
/// `YYYY-MM-DD` in UTC (what a date-time input sends). The one reading of a time bound, for the
/// filter's check and for the store that turns it into SQL.
pub fn parse_time_bound(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

/// Percent-encodes a query component.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
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
