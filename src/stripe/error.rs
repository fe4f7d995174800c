//! Stripe's failures and what they mean for the execution: try again, or give up.
//!
//! Classification follows Stripe's advice: 400, 401, 403 and 404 will not change by
//! themselves; 409 (a lock conflict), 429 and 5xx do, as do timeouts and lost
//! connections. `Stripe-Should-Retry` is Stripe saying which it is, so it wins.

use std::time::Duration;

use serde::Deserialize;

use crate::executor::JobError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StripeError {
    /// Stripe answered with an error status.
    #[error("Stripe answered {status}{}: {message}", code.as_deref().or(error_type.as_deref()).map(|c| format!(" {c}")).unwrap_or_default())]
    Api {
        status: u16,
        error_type: Option<String>,
        code: Option<String>,
        message: String,
        /// `Stripe-Should-Retry`, when sent.
        should_retry: Option<bool>,
        /// `Retry-After`, when sent.
        retry_after: Option<Duration>,
    },
    #[error("Stripe did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach Stripe: {0}")]
    Connection(String),
    /// A 200 whose body is not what was asked for (a proxy page, a truncated body).
    #[error("Stripe's answer could not be read: {0}")]
    Unreadable(String),
    /// Deferral's budget for the endpoint is spent, or Stripe answered 429 (`stripe_said`):
    /// the execution runs again after `wait`, the attempt not counted.
    #[error("{}; waiting {} for Stripe budget", stripe_said.as_deref().unwrap_or("no budget left"), humantime::format_duration(Duration::from_millis(wait.as_millis() as u64)))]
    OverBudget {
        endpoint: String,
        wait: Duration,
        /// What Stripe said, when the wait follows a 429.
        stripe_said: Option<String>,
    },
}

/// Stripe's error body: `{"error": {"type", "code", "message"}}`.
#[derive(Deserialize)]
struct Body {
    error: Detail,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(rename = "type")]
    error_type: Option<String>,
    code: Option<String>,
    message: Option<String>,
}

impl StripeError {
    /// Reads an error answer; a body that is not Stripe's shape still gives a message.
    pub fn from_response(status: u16, headers: &reqwest::header::HeaderMap, body: &str) -> StripeError {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let should_retry = header("stripe-should-retry").and_then(|v| match v {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        });
        // Stripe sends whole seconds; an HTTP date (allowed by RFC 9110) is ignored.
        let retry_after = header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let (error_type, code, message) = match serde_json::from_str::<Body>(body) {
            Ok(Body { error }) => (error.error_type, error.code, error.message.unwrap_or_default()),
            Err(_) => (None, None, body.chars().take(200).collect()),
        };
        StripeError::Api {
            status,
            error_type,
            code,
            message,
            should_retry,
            retry_after,
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            StripeError::Api {
                should_retry: Some(retry),
                ..
            } => *retry,
            StripeError::Api { status, .. } => matches!(status, 409 | 429) || *status >= 500,
            StripeError::Timeout(_)
            | StripeError::Connection(_)
            | StripeError::Unreadable(_)
            | StripeError::OverBudget { .. } => true,
        }
    }

    /// Stripe's rate limiter refused the call (as opposed to a lock timeout, also a 429): a 429
    /// with `Stripe-Rate-Limited-Reason`, or with the `rate_limit` code.
    pub fn is_rate_limit(&self, reason: Option<&str>) -> bool {
        match self {
            StripeError::Api { status: 429, code, .. } => reason.is_some() || code.as_deref() != Some("lock_timeout"),
            _ => false,
        }
    }

    /// How long to wait before asking again when the answer was "not now": Deferral's budget
    /// had no room, or Stripe answered 429 (its `Retry-After`, or a second). `None` for the rest.
    pub fn wait_before_retry(&self) -> Option<Duration> {
        match self {
            StripeError::OverBudget { wait, .. } => Some(*wait),
            StripeError::Api {
                status: 429,
                retry_after,
                ..
            } => Some(retry_after.unwrap_or(Duration::from_secs(1))),
            _ => None,
        }
    }

    /// The object asked for does not exist (404 `resource_missing`).
    pub fn is_missing(&self) -> bool {
        matches!(self, StripeError::Api { status: 404, .. })
    }
}

impl From<StripeError> for JobError {
    fn from(e: StripeError) -> JobError {
        // A 429 never costs an attempt: Stripe is busy, nothing is wrong with the execution.
        if let Some(wait) = e.wait_before_retry() {
            return JobError::postponed(e.to_string(), wait);
        }
        let retry_after = match &e {
            StripeError::Api { retry_after, .. } => *retry_after,
            _ => None,
        };
        let job = if e.is_retryable() {
            JobError::retryable(e.to_string())
        } else {
            JobError::permanent(e.to_string())
        };
        match retry_after {
            Some(after) => job.retry_after(after),
            None => job,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::ErrorKind;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn answer(status: u16, headers: &[(&'static str, &'static str)], body: &str) -> JobError {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_static(v));
        }
        StripeError::from_response(status, &map, body).into()
    }

    const MISSING: &str =
        r#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such event: 'evt_1'"}}"#;

    #[test]
    fn client_errors_are_permanent_and_say_why() {
        let e = answer(404, &[], MISSING);
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert_eq!(
            e.message,
            "Stripe answered 404 resource_missing: No such event: 'evt_1'"
        );
        for status in [400, 401, 403] {
            assert_eq!(answer(status, &[], "{}").kind, ErrorKind::Permanent, "{status}");
        }
    }

    #[test]
    fn rate_limits_are_postponed_and_conflicts_and_server_errors_retried() {
        let e = answer(
            429,
            &[("retry-after", "7")],
            r#"{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Postponed);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        let e = answer(409, &[("retry-after", "7")], "{}");
        assert_eq!(e.kind, ErrorKind::Retryable);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        for status in [409, 500, 502, 503] {
            assert_eq!(
                answer(status, &[], "<html>bad gateway</html>").kind,
                ErrorKind::Retryable,
                "{status}"
            );
        }
        assert!(
            answer(502, &[], "<html>bad gateway</html>")
                .message
                .contains("bad gateway")
        );
    }

    #[test]
    fn stripe_should_retry_overrides_the_status() {
        assert_eq!(
            answer(500, &[("stripe-should-retry", "false")], "{}").kind,
            ErrorKind::Permanent
        );
        assert_eq!(
            answer(400, &[("stripe-should-retry", "true")], "{}").kind,
            ErrorKind::Retryable
        );
        assert_eq!(
            answer(400, &[("stripe-should-retry", "maybe")], "{}").kind,
            ErrorKind::Permanent
        );
    }

    #[test]
    fn network_failures_are_retryable() {
        assert!(StripeError::Timeout(Duration::from_secs(1)).is_retryable());
        assert!(StripeError::Connection("refused".into()).is_retryable());
    }
}
