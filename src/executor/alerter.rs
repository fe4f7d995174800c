//! The alerter: composes failure alerts from the outbox (`store::alerts`) and posts them to the
//! Slack-compatible incoming webhooks of `DEFERRAL_ALERT_WEBHOOK_URL`, retrying with back-off
//! while a receiver fails. Every process runs one; leases keep them from sending a delivery twice
//! (`outbound`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::store::alerts::AlertDraft;
use crate::store::{Store, now_ms};

mod outbound;

/// Longest wait between two posts of one delivery.
const MAX_RETRY_INTERVAL: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct AlertSettings {
    pub receivers: Vec<String>,
    pub window: Duration,
    pub retry_interval: Duration,
    /// Longest wait for a receiver to take one message.
    pub timeout: Duration,
    /// Base of the links in messages, without a trailing `/`.
    pub public_url: String,
    /// Sent messages older than this are deleted.
    pub retention: Duration,
}

impl AlertSettings {
    pub fn from_config(c: &Config) -> Self {
        AlertSettings {
            receivers: c.alert_webhook_url.0.clone(),
            window: c.alert_digest_window,
            retry_interval: c.alert_retry_interval,
            timeout: c.alert_timeout,
            public_url: c
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", c.site_addr)),
            retention: c.retention,
        }
    }

    /// How long to wait after the `failed_posts`-th failed post of a delivery (counting from 0).
    fn retry_after(&self, failed_posts: i64) -> Duration {
        let factor = 2u32.saturating_pow(failed_posts.clamp(0, 20) as u32);
        self.retry_interval.saturating_mul(factor).min(MAX_RETRY_INTERVAL)
    }
}

/// Runs the alerter until `stop`.
pub fn spawn(store: Store, settings: AlertSettings, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Often enough that a window ends on time, rarely enough to cost nothing.
        let tick = (settings.window / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let settings = Arc::new(settings);
        let mut outbound = outbound::Outbound::new(store.clone(), settings.clone(), super::owner_id());
        let format = {
            let s = settings.clone();
            move |draft: &AlertDraft, id: i64| format_message(&s.public_url, draft, id)
        };
        let mut rounds = 0u64;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = stop.cancelled() => return outbound.finish().await,
            }
            rounds += 1;
            if rounds.is_multiple_of(3600) {
                let before = now_ms() - settings.retention.as_millis() as i64;
                if let Err(e) = store.bounded("alerts", store.prune_alerts(before)).await {
                    tracing::warn!(error = %e, "alerter: cannot prune old alerts");
                }
            }
            let window_ms = settings.window.as_millis() as i64;
            match store.bounded("alerts", store.alerts_due(now_ms(), window_ms)).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "alerter: cannot read the outbox; will try again");
                    continue;
                }
            }
            let compose = store.compose_alerts(now_ms(), window_ms, &settings.receivers, &format);
            if let Err(e) = store.bounded("alerts", compose).await {
                tracing::warn!(error = %e, "alerter: cannot compose alerts; will try again");
            }
            if let Err(e) = outbound.send_due().await {
                tracing::warn!(error = %e, "alerter: cannot take deliveries; will try again");
            }
        }
    })
}

/// Slack reads `&`, `<` and `>` in message text as markup: escaped as its formatting rules ask.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The summary (the `text` field) and the JSON body of a message: Slack's incoming-webhook
/// format (`text`, and one legacy `attachments` entry with `fallback`, `color`, `title`,
/// `title_link`, `fields`, `footer`, `ts`), which Mattermost and Discord's Slack endpoint read too.
pub fn format_message(public_url: &str, draft: &AlertDraft, id: i64) -> (String, String) {
    let list = |event_type: &str, status: &str| {
        format!(
            "{public_url}/?type={}{status}",
            domain::model::encode_component(event_type)
        )
    };
    let field =
        |title: &str, value: &str, short: bool| json!({ "title": title, "value": escape(value), "short": short });
    let (summary, color, title, link, fields): (String, &str, String, String, Vec<Value>) = match draft {
        AlertDraft::Failed {
            event_type,
            execution_id,
            event_id,
            error,
        } => {
            let link = format!(
                "{public_url}/executions/{}",
                domain::model::encode_component(execution_id)
            );
            let error = error.as_deref().unwrap_or("(no message)");
            (
                format!("Deferral: {event_type} failed: {error} ({event_id}) {link}"),
                "danger",
                format!("{event_type} failed"),
                link,
                vec![
                    field("Event type", event_type, true),
                    field("Event", event_id, true),
                    field("Execution", execution_id, true),
                    field("Error", error, false),
                ],
            )
        }
        AlertDraft::Digest {
            event_type,
            count,
            latest_error,
        } => {
            let link = list(event_type, "&status=failed");
            let error = latest_error.as_deref().unwrap_or("(no message)");
            (
                format!(
                    "Deferral: {count} executions of {event_type} failed since the last alert. Latest error: {error} {link}"
                ),
                "danger",
                format!("{count} executions of {event_type} failed"),
                link,
                vec![
                    field("Event type", event_type, true),
                    field("Failed", &count.to_string(), true),
                    field("Latest error", error, false),
                ],
            )
        }
        AlertDraft::Recovered { event_type } => {
            let link = list(event_type, "");
            (
                format!("Deferral: {event_type} recovered: an execution succeeded after the failures reported. {link}"),
                "good",
                format!("{event_type} recovered"),
                link,
                vec![field("Event type", event_type, true)],
            )
        }
    };
    let body = json!({
        "text": escape(&summary),
        "attachments": [{
            "fallback": escape(&summary),
            "color": color,
            "title": escape(&title),
            "title_link": link,
            "fields": fields,
            "footer": format!("Deferral alert {id}"),
            "ts": now_ms() / 1000,
        }],
    });
    (summary, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_link_to_the_execution_and_escape_markup() {
        let draft = AlertDraft::Failed {
            event_type: "invoice.paid".into(),
            execution_id: "exe_1".into(),
            event_id: "evt_1".into(),
            error: Some("<b> & co".into()),
        };
        let (summary, body) = format_message("https://d.example", &draft, 7);
        assert!(summary.contains("https://d.example/executions/exe_1"), "{summary}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(body["text"].as_str().unwrap().contains("&lt;b&gt; &amp; co"));
        assert_eq!(
            body["attachments"][0]["title_link"],
            "https://d.example/executions/exe_1"
        );
        assert_eq!(body["attachments"][0]["footer"], "Deferral alert 7");
    }

    #[test]
    fn retries_back_off_up_to_ten_minutes() {
        let s = AlertSettings {
            receivers: vec![],
            window: Duration::from_secs(60),
            retry_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            public_url: String::new(),
            retention: Duration::from_secs(1),
        };
        assert_eq!(s.retry_after(0), Duration::from_secs(5));
        assert_eq!(s.retry_after(2), Duration::from_secs(20));
        assert_eq!(s.retry_after(1000), MAX_RETRY_INTERVAL);
    }
}
