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
    /// The types with a concurrency limit (a claim of the rest leaves them out).
    limited: Vec<String>,
}

impl Watchdog {
    pub(crate) fn new(store: Store, handle: ExecutorHandle, settings: &Settings) -> Watchdog {
        Watchdog {
            store,
            handle,
            workers: settings.workers as usize,
            stall_after: stall_after(settings),
            limited: settings.type_limits.iter().map(|(t, _)| t.clone()).collect(),
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
