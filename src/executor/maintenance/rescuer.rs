//! Rescuer (leader only): executions whose worker died (lease expired) go back to scheduled, or
//! fail when out of attempts. This process's own live leases are renewed first: after an outage
//! longer than the lease, the rescuer would otherwise take back attempts that are alive here, and
//! they would run twice at once.

use std::time::Duration;

use super::Service;
use super::heartbeat::renew_leases;
use crate::executor::ExecutorHandle;
use crate::store::{Store, StoreError};

pub struct Rescuer {
    store: Store,
    handle: ExecutorHandle,
    lease: Duration,
    every: Duration,
}

/// What a rescuer's run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RescuerReport {
    /// The executions taken back (scheduled again, or failed when out of attempts).
    pub rescued: Vec<String>,
}

impl Rescuer {
    /// Rescues every `every`; `handle`'s attempts (under leases of `lease`) are renewed first.
    pub fn new(store: Store, handle: ExecutorHandle, lease: Duration, every: Duration) -> Rescuer {
        Rescuer {
            store,
            handle,
            lease,
            every,
        }
    }
}

impl Service for Rescuer {
    type Report = RescuerReport;

    fn name(&self) -> &'static str {
        "rescuer"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn run_once(&self) -> Result<RescuerReport, StoreError> {
        renew_leases(&self.store, &self.handle, self.lease).await?;
        let rescued = self.store.bounded("rescue", self.store.rescue()).await?;
        if !rescued.is_empty() {
            tracing::warn!(count = rescued.len(), ids = ?rescued, "rescued executions whose lease expired");
            self.handle.wake();
        }
        Ok(RescuerReport { rescued })
    }
}
