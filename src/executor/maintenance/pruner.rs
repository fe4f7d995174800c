//! Pruner (leader only): finished executions older than the retention, in small batches, and the
//! audit log entries as old.

use std::time::Duration;

use super::Service;
use crate::store::{Store, StoreError, now_ms};

/// Most executions deleted in one transaction.
pub const PRUNE_BATCH: i64 = 1000;

pub struct Pruner {
    store: Store,
    retention: Duration,
}

/// What a pruner's run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PrunerReport {
    /// Finished executions deleted (with their attempts).
    pub executions: u64,
    /// Audit log entries deleted.
    pub audit_entries: u64,
}

impl Pruner {
    /// Keeps finished executions for `retention`; runs a tenth of it apart (200 ms to a minute).
    pub fn new(store: Store, retention: Duration) -> Pruner {
        Pruner { store, retention }
    }
}

impl Service for Pruner {
    type Report = PrunerReport;

    fn name(&self) -> &'static str {
        "pruner"
    }

    fn every(&self) -> Duration {
        (self.retention / 10).clamp(Duration::from_millis(200), Duration::from_secs(60))
    }

    async fn run_once(&self) -> Result<PrunerReport, StoreError> {
        let store = &self.store;
        let before = now_ms() - self.retention.as_millis() as i64;
        let mut report = PrunerReport::default();
        loop {
            let n = store.bounded("prune", store.prune(before, PRUNE_BATCH)).await?;
            if n > 0 {
                tracing::info!(count = n, "pruned finished executions past the retention");
            }
            report.executions += n;
            if n < PRUNE_BATCH as u64 {
                break;
            }
        }
        // The audit log is kept as long as the executions it acted on.
        let n = store.bounded("prune", store.prune_console(before, now_ms())).await?;
        if n > 0 {
            tracing::info!(count = n, "pruned audit log entries past the retention");
        }
        report.audit_entries = n;
        Ok(report)
    }
}
