//! The overview on `/`: how the last day (or week) went, the backlog, what fails most.

use serde::{Deserialize, Serialize};

/// The window the charts cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Window {
    /// The last 24 hours, by hour.
    Day,
    /// The last 7 days, by 6 hours.
    Week,
}

impl Window {
    /// As written in the URL: `chart=24h` or `chart=7d`.
    pub fn parse(s: Option<&str>) -> Window {
        match s {
            Some("7d") => Window::Week,
            _ => Window::Day,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Day => "24h",
            Window::Week => "7d",
        }
    }

    pub fn bucket_ms(self) -> i64 {
        match self {
            Window::Day => 3_600_000,
            Window::Week => 6 * 3_600_000,
        }
    }

    pub fn buckets(self) -> usize {
        match self {
            Window::Day => 24,
            Window::Week => 28,
        }
    }
}

/// Finished executions created in one interval, by final state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Start of the interval, ms since the epoch.
    pub start_ms: i64,
    pub succeeded: i64,
    pub failed: i64,
    /// Cancelled or discarded.
    pub other: i64,
}

impl Bucket {
    pub fn total(&self) -> i64 {
        self.succeeded + self.failed + self.other
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub window: Window,
    pub now_ms: i64,
    /// Oldest first; the last one is the current (partial) interval.
    pub buckets: Vec<Bucket>,
    /// Due and not started.
    pub backlog: i64,
    /// When the oldest due execution became due (ms), if any waits.
    pub oldest_due_ms: Option<i64>,
    /// The event types with the most failed executions in the window, most first.
    pub failing_types: Vec<(String, i64)>,
}
