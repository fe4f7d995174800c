//! Event types as operators steer them: counts per state, and pauses (issue 18).

use serde::{Deserialize, Serialize};

use crate::model::State;

/// A pause: while it lasts, scheduled executions of every matching type are held (not claimed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    /// An event type (`invoice.paid`) or a prefix ending in `*` (`invoice.*`).
    pub pattern: String,
    pub paused_by: String,
    /// RFC 3339.
    pub paused_at: String,
    /// Scheduled executions it holds now.
    pub holds: i64,
}

/// One event type seen in the executions, with its counts and the pause holding it, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventTypeSummary {
    pub event_type: String,
    pub counts: Vec<(State, i64)>,
    pub paused: Option<Pause>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventTypes {
    pub types: Vec<EventTypeSummary>,
    /// Every pause, including patterns no type seen so far matches.
    pub pauses: Vec<Pause>,
}

/// Why a scheduled execution is not running although due.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Waiting {
    /// Its event type is paused.
    Paused(Pause),
    /// An earlier execution of the same Stripe object is unfinished (per-object order);
    /// `paused` when that one is itself held by a pause.
    BehindObject {
        execution_id: String,
        event_type: String,
        paused: Option<Pause>,
    },
}

/// The longest pattern accepted.
pub const MAX_PATTERN_LEN: usize = 200;

/// Checks an operator's pattern: an event type's characters (letters, digits, `_`, `.`, `-`),
/// optionally ending in one `*` (a prefix; `*` alone pauses every type). Returns the prefix for
/// a prefix pattern.
pub fn parse_pattern(pattern: &str) -> Result<Option<&str>, String> {
    if pattern.is_empty() || pattern.len() > MAX_PATTERN_LEN {
        return Err(format!(
            "a pattern is an event type or a prefix ending in `*`, 1 to {MAX_PATTERN_LEN} characters"
        ));
    }
    let (body, prefix) = match pattern.strip_suffix('*') {
        Some(body) => (body, true),
        None => (pattern, false),
    };
    if let Some(bad) = body
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "invalid character `{bad}` in `{pattern}`: an event type (e.g. invoice.paid) or a prefix ending in `*` (e.g. invoice.*)"
        ));
    }
    Ok(prefix.then_some(body))
}

#[cfg(test)]
mod tests {
    use super::parse_pattern;

    #[test]
    fn patterns_are_types_or_prefixes() {
        assert_eq!(parse_pattern("invoice.paid"), Ok(None));
        assert_eq!(parse_pattern("invoice.*"), Ok(Some("invoice.")));
        assert_eq!(parse_pattern("*"), Ok(Some("")));
        assert!(parse_pattern("").is_err());
        assert!(parse_pattern("in*voice").is_err());
        assert!(parse_pattern("invoice.**").is_err());
        assert!(parse_pattern("a b").is_err());
        assert!(parse_pattern("'; DROP TABLE executions; --").is_err());
        assert!(parse_pattern(&"a".repeat(201)).is_err());
    }
}
