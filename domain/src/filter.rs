//! Which executions to show: the filter the console's URL and the REST API's query share, its
//! one validation, and the cursor that pages through it.

use serde::{Deserialize, Serialize};

use crate::model::{Origin, State};

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
