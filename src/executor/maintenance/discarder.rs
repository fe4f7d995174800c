//! Discarder (leader only): scheduled executions past their deadline.

use std::time::Duration;

use super::Service;
use crate::store::{Store, StoreError};

pub struct Discarder {
    store: Store,
    every: Duration,
}

/// What a discarder's run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DiscarderReport {
    /// Executions discarded.
    pub discarded: u64,
}

impl Discarder {
    pub fn new(store: Store, every: Duration) -> Discarder {
        Discarder { store, every }
    }
}

impl Service for Discarder {
    type Report = DiscarderReport;

    fn name(&self) -> &'static str {
        "discarder"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn run_once(&self) -> Result<DiscarderReport, StoreError> {
        let n = self.store.bounded("discard", self.store.discard_overdue()).await?;
        if n > 0 {
            tracing::info!(count = n, "discarded executions not started before their deadline");
        }
        Ok(DiscarderReport { discarded: n })
    }
}
