//! Watchdog: whether the executor makes progress, for /healthz, /metrics and the log.

use std::time::Duration;

use super::Service;
use crate::executor::liveness::judge;
use crate::executor::{ExecutorHandle, Settings, Verdict};
use crate::store::{Store, StoreError};

/// The watchdog's period.
const WATCHDOG_EVERY: Duration = Duration::from_secs(1);
/// While degraded, the log says so again every this many seconds.
const DEGRADED_LOG_EVERY: u64 = 10;

pub(crate) struct Watchdog {
    store: Store,
    handle: ExecutorHandle,
    /// The executor's workers.
    workers: usize,
    /// How long without a claim or a completion, with work due, before it says degraded.
    stall_after: Duration,
    /// The types with a concurrency limit, and their limits: due work of one of them counts only
    /// while fewer of it run than its limit (a claim would start it then; at the limit it waits,
    /// and that is not a stall).
    limited: Vec<(String, i64)>,
}

impl Watchdog {
    pub(crate) fn new(store: Store, handle: ExecutorHandle, settings: &Settings) -> Watchdog {
        Watchdog {
            store,
            handle,
            workers: settings.workers as usize,
            stall_after: stall_after(settings),
            limited: settings
                .type_limits
                .iter()
                .map(|(t, n)| (t.clone(), i64::from(*n)))
                .collect(),
        }
    }
}

impl Service for Watchdog {
    /// The verdict.
    type Report = Verdict;

    fn name(&self) -> &'static str {
        "watchdog"
    }

    fn every(&self) -> Duration {
        WATCHDOG_EVERY
    }

    /// Decides whether the executor is degraded; logs what it waits on while it is.
    async fn run_once(&self) -> Result<Verdict, StoreError> {
        let live = self.handle.liveness();
        let (still_for, pending, failing) = live.stalled_for();
        let claimable = async {
            self.store
                .bounded("watchdog", self.store.claimable_exists(&self.limited))
                .await
                .ok()
        };
        // Workers not running an attempt. Not the free permits: the dispatcher holds those while
        // it claims, so a claim waiting on a lock (up to its deadline, again after each back-off)
        // made an executor that could claim nothing look busy, and say ok.
        let free = self.workers.saturating_sub(self.handle.running_attempts());
        let verdict = judge(still_for, self.stall_after, pending, free, failing, claimable).await;
        let degraded = if verdict == Verdict::Ok { 0.0 } else { 1.0 };
        metrics::gauge!("deferral_executor_degraded", "owner" => self.handle.owner().to_string()).set(degraded);
        let before = live.set_verdict(verdict.clone());
        match (&before, &verdict) {
            (_, Verdict::Degraded(reason)) => {
                // On the change, then every few seconds while it lasts.
                if before == Verdict::Ok || still_for.as_secs() % DEGRADED_LOG_EVERY == 0 {
                    tracing::warn!(reason = %reason, waiting = %live.waits(), "executor degraded");
                }
            }
            (Verdict::Degraded(_), Verdict::Ok) => tracing::info!("executor making progress again"),
            (Verdict::Ok, Verdict::Ok) => {}
        }
        Ok(verdict)
    }
}

/// How long without a claim or a completion, with work due, before the executor says degraded.
fn stall_after(s: &Settings) -> Duration {
    s.lease.max(s.poll_interval * 5)
}

#[cfg(test)]
mod tests {
    use super::super::due_event;
    use super::*;
    use crate::executor::RetryPolicy;

    fn settings(type_limits: Vec<(String, u32)>) -> Settings {
        Settings {
            workers: 4,
            lease: Duration::from_millis(100),
            poll_interval: Duration::from_millis(10),
            max_duration: Duration::from_secs(30),
            retention: Duration::from_secs(86_400),
            shutdown_grace: Duration::from_secs(1),
            retry: RetryPolicy {
                max_attempts: 3,
                initial_interval: Duration::from_millis(50),
                multiplier: 1.0,
                randomization_factor: 0.0,
                max_interval: Duration::from_millis(50),
            },
            type_limits,
        }
    }

    /// A real SQLite file; nothing claims here, so any due work that could be claimed is a stall.
    #[tokio::test]
    async fn a_limited_types_due_work_counts_only_below_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("d.db").display()))
            .await
            .unwrap();
        let events: Vec<_> = (0..3)
            .map(|i| due_event(&format!("evt_{i}"), "charge.failed"))
            .collect();
        store.ingest(&events).await.unwrap();
        let settings = settings(vec![("charge.failed".into(), 2)]);
        let watchdog = Watchdog::new(store.clone(), ExecutorHandle::default(), &settings);
        tokio::time::sleep(stall_after(&settings) + Duration::from_millis(50)).await;
        // Due, below its limit, free workers, nothing claimed: stalled, although the type has a limit.
        let verdict = watchdog.run_once().await.unwrap();
        assert!(matches!(verdict, Verdict::Degraded(_)), "{verdict:?}");
        // Two run (in another process, say): the third waits for the limit, which is no stall.
        let running = store
            .claim_limited("elsewhere", "charge.failed", 2, 60_000, 2)
            .await
            .unwrap();
        assert_eq!(running.len(), 2);
        assert_eq!(watchdog.run_once().await.unwrap(), Verdict::Ok);
    }
}
