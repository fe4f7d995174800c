//! Fencer: an attempt whose lease is about to run out unrenewed (the database did not answer the
//! heartbeat) is stopped before it does, since another process's rescuer may then run the
//! execution. No database call: it must work while the database does not answer.

use std::time::Duration;

use super::Service;
use crate::executor::ExecutorHandle;
use crate::store::StoreError;

pub struct Fencer {
    handle: ExecutorHandle,
    lease: Duration,
}

/// What a fencer's run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FencerReport {
    /// Attempts stopped because their lease was about to run out.
    pub fenced: usize,
}

impl Fencer {
    /// Watches the attempts `handle`'s executor runs, under leases of `lease`.
    pub fn new(handle: ExecutorHandle, lease: Duration) -> Fencer {
        Fencer { handle, lease }
    }
}

impl Service for Fencer {
    type Report = FencerReport;

    fn name(&self) -> &'static str {
        "fencer"
    }

    fn every(&self) -> Duration {
        self.lease / 10
    }

    async fn run_once(&self) -> Result<FencerReport, StoreError> {
        let fenced = self.handle.fence_expiring(self.lease / 5);
        if fenced > 0 {
            tracing::warn!(count = fenced, "stopping attempts whose lease could not be renewed");
        }
        Ok(FencerReport { fenced })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::executor::{RunningAttempt, Stop};

    fn attempt(
        handle: &ExecutorHandle,
        id: &str,
        lease_left: Duration,
    ) -> (CancellationToken, Arc<Mutex<Option<Stop>>>) {
        let (stop, reason) = (CancellationToken::new(), Arc::new(Mutex::new(None)));
        let running = RunningAttempt {
            stop: stop.clone(),
            reason: reason.clone(),
            attempt: 1,
            lease_until: Instant::now() + lease_left,
            finished: None,
        };
        handle.running.attempts.lock().unwrap().insert(id.into(), running);
        (stop, reason)
    }

    #[tokio::test]
    async fn attempts_whose_lease_is_about_to_run_out_are_stopped_and_counted() {
        let handle = ExecutorHandle::default();
        let (expiring, why) = attempt(&handle, "exe_expiring", Duration::from_secs(1));
        let (renewed, _) = attempt(&handle, "exe_renewed", Duration::from_secs(30));
        let fencer = Fencer::new(handle, Duration::from_secs(30));
        assert_eq!(fencer.run_once().await.unwrap(), FencerReport { fenced: 1 });
        assert!(expiring.is_cancelled());
        assert_eq!(*why.lock().unwrap(), Some(Stop::LeaseLost));
        assert!(!renewed.is_cancelled());
        // Stopped once: not counted again.
        assert_eq!(fencer.run_once().await.unwrap(), FencerReport { fenced: 0 });
    }
}
