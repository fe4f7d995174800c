//! What an execution runs: a `Job` takes a claimed execution and succeeds or fails.

use std::time::Duration;

use crate::store::Claimed;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Worth trying again (network, rate limit, 5xx, a bug that may be fixed by a deploy).
    Retryable,
    /// Will never succeed (bad payload, the object is gone, the key is refused): fail at once.
    Permanent,
    /// Not tried: a shared budget (Stripe's rate limits) has no room now. Runs again after
    /// `retry_after`; the attempt is not counted and never fails the execution.
    Postponed,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    pub kind: ErrorKind,
    pub message: String,
    /// Run the next attempt after this instead of the back-off (e.g. Stripe's Retry-After).
    pub retry_after: Option<Duration>,
}

impl JobError {
    pub fn retryable(message: impl Into<String>) -> Self {
        JobError {
            kind: ErrorKind::Retryable,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        JobError {
            kind: ErrorKind::Permanent,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Give the execution back, to run again after `wait`, without counting the attempt.
    pub fn postponed(message: impl Into<String>, wait: Duration) -> Self {
        JobError {
            kind: ErrorKind::Postponed,
            message: message.into(),
            retry_after: Some(wait),
        }
    }

    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobOutput {
    /// A short human account of what happened, shown on the execution.
    pub result: String,
    /// Where the event was read from: `api` or `payload`.
    pub source: Option<String>,
}

#[async_trait::async_trait]
pub trait Job: Send + Sync + 'static {
    async fn run(&self, execution: &Claimed) -> Result<JobOutput, JobError>;
}

/// Does nothing and succeeds: for benchmarks and for measuring the executor itself.
pub struct Noop;

#[async_trait::async_trait]
impl Job for Noop {
    async fn run(&self, _: &Claimed) -> Result<JobOutput, JobError> {
        Ok(JobOutput {
            result: "ok".into(),
            source: None,
        })
    }
}
