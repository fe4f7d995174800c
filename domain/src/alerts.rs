//! Failure alerts as the console shows them: composed messages and their deliveries (issue 18).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertDelivery {
    /// The receiver's scheme and host only: an incoming-webhook URL's path is its secret.
    pub receiver: String,
    /// `pending` or `sent`.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub sent_at: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertMessage {
    pub id: i64,
    /// `failed` (one execution), `digest` (several) or `recovered`.
    pub kind: String,
    pub event_type: String,
    pub failures: i64,
    pub summary: String,
    pub created_at: String,
    pub deliveries: Vec<AlertDelivery>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Alerts {
    /// Whether `DEFERRAL_ALERT_WEBHOOK_URL` names any receiver.
    pub configured: bool,
    /// Final failures not yet in a message (waiting for the digest window).
    pub pending_failures: i64,
    /// Newest first.
    pub messages: Vec<AlertMessage>,
}

/// The part of a receiver URL that may be shown: scheme and host.
pub fn receiver_label(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or(host);
    if scheme.is_empty() {
        host.to_string()
    } else {
        format!("{scheme}://{host}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn receiver_labels_hide_the_secret_path() {
        assert_eq!(
            super::receiver_label("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            super::receiver_label("http://user:pw@127.0.0.1:9/x"),
            "http://127.0.0.1:9"
        );
    }
}
