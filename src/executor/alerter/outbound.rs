//! Posting composed alerts: each delivery is posted in a task of its own, so a receiver that
//! hangs holds up only its own deliveries (and at most [`PER_RECEIVER`] posts), never another
//! receiver's and never the next round. Every post ends before its lease does, so no other
//! process takes the delivery while this one may still send it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{Id, JoinSet};

use super::AlertSettings;
use crate::store::alerts::DeliveryJob;
use crate::store::{Store, StoreError, now_ms};

/// Posts in flight at once in one process.
const IN_FLIGHT: usize = 64;
/// Posts in flight at once to one receiver: one that hangs keeps this many waiting, no more.
const PER_RECEIVER: usize = 4;
/// Deliveries taken per claim.
const BATCH: usize = 20;

/// The posts in flight, and to which receiver each goes.
pub(super) struct Outbound {
    store: Store,
    client: reqwest::Client,
    settings: Arc<AlertSettings>,
    owner: Arc<str>,
    posts: JoinSet<()>,
    receivers: HashMap<Id, String>,
}

impl Outbound {
    pub(super) fn new(store: Store, settings: Arc<AlertSettings>, owner: String) -> Outbound {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .build()
            .expect("an HTTP client");
        Outbound {
            store,
            client,
            settings,
            owner: owner.into(),
            posts: JoinSet::new(),
            receivers: HashMap::new(),
        }
    }

    /// What one post may take: the request, then the write that records its outcome. A
    /// delivery whose lease has less left is given back unposted.
    fn budget(&self) -> Duration {
        self.settings.timeout + self.store.deadline()
    }

    /// The lease on a delivery: a few budgets, so a claim that waited a little still leaves
    /// each post its whole budget.
    fn lease(&self) -> Duration {
        self.budget() * 3
    }

    /// Forgets the posts that ended.
    fn reap(&mut self) {
        while let Some(done) = self.posts.try_join_next_with_id() {
            let id = match done {
                Ok((id, ())) => id,
                Err(e) => {
                    tracing::warn!(error = %e, "alerter: a post ended abnormally");
                    e.id()
                }
            };
            self.receivers.remove(&id);
        }
    }

    fn in_flight_to(&self, receiver: &str) -> usize {
        self.receivers.values().filter(|r| *r == receiver).count()
    }

    /// Starts a post for every delivery due now, as far as the limits allow; does not wait
    /// for them.
    pub(super) async fn send_due(&mut self) -> Result<(), StoreError> {
        loop {
            self.reap();
            let free = IN_FLIGHT.saturating_sub(self.posts.len()).min(BATCH);
            if free == 0 {
                return Ok(());
            }
            let mut busy: Vec<String> = self.settings.receivers.clone();
            busy.retain(|r| self.in_flight_to(r) >= PER_RECEIVER);
            let lease = self.lease().as_millis() as i64;
            let claim = self
                .store
                .claim_deliveries(&self.owner, now_ms(), lease, free as i64, &busy);
            let jobs = self.store.bounded("alert deliveries", claim).await?;
            let taken = jobs.len();
            for job in jobs {
                let short = job.lease_expires_at - now_ms() < self.budget().as_millis() as i64;
                if short || self.in_flight_to(&job.receiver) >= PER_RECEIVER {
                    let release = self.store.release_delivery(job.id, &self.owner);
                    self.store.bounded("alert deliveries", release).await?;
                    continue;
                }
                let receiver = job.receiver.clone();
                let post = deliver(
                    self.store.clone(),
                    self.client.clone(),
                    self.settings.clone(),
                    self.owner.clone(),
                    job,
                );
                let id = self.posts.spawn(post).id();
                self.receivers.insert(id, receiver);
            }
            if taken < free {
                return Ok(());
            }
        }
    }

    /// Waits for the posts in flight (each ends within its budget): one abandoned after the
    /// receiver took it would be sent again once its lease expired.
    pub(super) async fn finish(mut self) {
        while self.posts.join_next().await.is_some() {}
    }
}

/// Posts one delivery and records the outcome (while this process still holds the lease).
async fn deliver(
    store: Store,
    client: reqwest::Client,
    settings: Arc<AlertSettings>,
    owner: Arc<str>,
    job: DeliveryJob,
) {
    let recorded = match post(&client, &job.receiver, &job.body).await {
        Ok(()) => {
            let sent = store.delivery_sent(job.id, &owner, now_ms());
            store.bounded("alert deliveries", sent).await.map(|_| ())
        }
        Err(error) => {
            let next = now_ms() + settings.retry_after(job.attempts).as_millis() as i64;
            tracing::warn!(
                receiver = %domain::alerts::receiver_label(&job.receiver),
                attempts = job.attempts + 1,
                %error,
                "alert not delivered; will try again"
            );
            metrics::counter!("deferral_alert_delivery_failures_total").increment(1);
            let failed = store.delivery_failed(job.id, &owner, next, &error);
            store.bounded("alert deliveries", failed).await
        }
    };
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "alerter: cannot record a delivery; it is posted again once its lease expires");
    }
}

/// Posts the JSON body; any 2xx is delivered.
async fn post(client: &reqwest::Client, url: &str, body: &str) -> Result<(), String> {
    let resp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("request failed: {}", e.without_url()))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    let text: String = text.chars().take(200).collect();
    Err(format!("HTTP {}: {text}", status.as_u16()))
}
