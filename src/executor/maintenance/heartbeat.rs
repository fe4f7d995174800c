//! Heartbeat: renews the leases of live attempts; aborts attempts an operator cancelled from any
//! process; stops attempts whose lease could not be renewed in time (with the fencer).

use std::time::{Duration, Instant};

use super::Service;
use crate::executor::ExecutorHandle;
use crate::store::{Renewed, Store, StoreError};

/// How many leases' worth a finished attempt's completion may wait to be recorded while its lease
/// is still renewed; past that it is let go and the rescuer takes the execution back.
const COMPLETION_LEASES: u32 = 3;

pub struct Heartbeat {
    store: Store,
    handle: ExecutorHandle,
    lease: Duration,
}

/// What a heartbeat did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeartbeatReport {
    /// Leases renewed.
    pub renewed: usize,
    /// Attempts aborted here because an operator cancelled their execution.
    pub cancelled: usize,
}

impl Heartbeat {
    /// Renews the leases of the attempts `handle`'s executor runs, for `lease` each time.
    pub fn new(store: Store, handle: ExecutorHandle, lease: Duration) -> Heartbeat {
        Heartbeat { store, handle, lease }
    }
}

impl Service for Heartbeat {
    type Report = HeartbeatReport;

    fn name(&self) -> &'static str {
        "heartbeat"
    }

    fn every(&self) -> Duration {
        self.lease / 3
    }

    async fn run_once(&self) -> Result<HeartbeatReport, StoreError> {
        let renewed = renew_leases(&self.store, &self.handle, self.lease).await?;
        for id in &renewed.cancel {
            self.handle.abort(id);
        }
        Ok(HeartbeatReport {
            renewed: renewed.ids.len(),
            cancelled: renewed.cancel.len(),
        })
    }
}

/// Renews the leases of this process's live attempts (see `ExecutorHandle::renewable_ids`).
pub(super) async fn renew_leases(
    store: &Store,
    handle: &ExecutorHandle,
    lease: Duration,
) -> Result<Renewed, StoreError> {
    let ids = handle.renewable_ids(lease * COMPLETION_LEASES);
    if ids.is_empty() {
        return Ok(Default::default());
    }
    // The lease counts from before the statement was sent: the database's is at least as long.
    let asked = Instant::now();
    let renew = store.heartbeat(handle.owner(), &ids, lease.as_millis() as i64);
    let renewed = store.bounded("heartbeat", renew).await?;
    handle.renewed(&renewed.ids, asked + lease);
    Ok(renewed)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio_util::sync::CancellationToken;

    use super::super::due_event;
    use super::*;
    use crate::executor::RunningAttempt;
    use crate::store::Claimed;

    /// A real SQLite file where this process claimed `events` executions under a one-second lease.
    async fn claimed_here(events: usize) -> (tempfile::TempDir, Store, ExecutorHandle, Vec<Claimed>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("d.db").display()))
            .await
            .unwrap();
        let handle = ExecutorHandle::default();
        handle.owner.set("this-process".into()).unwrap();
        let due: Vec<_> = (0..events)
            .map(|i| due_event(&format!("evt_{i}"), "customer.updated"))
            .collect();
        store.ingest(&due).await.unwrap();
        let claimed = store.claim("this-process", 10, 1000, &[]).await.unwrap();
        assert_eq!(claimed.len(), events);
        (dir, store, handle, claimed)
    }

    /// Registers `c`'s attempt as this process's, finished at `finished` (running if none).
    fn register(handle: &ExecutorHandle, c: &Claimed, finished: Option<Instant>) -> CancellationToken {
        let stop = CancellationToken::new();
        let running = RunningAttempt {
            stop: stop.clone(),
            reason: Arc::new(Mutex::new(None)),
            attempt: c.row.attempts,
            lease_until: Instant::now(),
            finished,
        };
        handle
            .running
            .attempts
            .lock()
            .unwrap()
            .insert(c.row.id.clone(), running);
        stop
    }

    /// Two attempts of this process run, an operator cancelled one.
    #[tokio::test]
    async fn renews_this_process_leases_and_aborts_what_an_operator_cancelled() {
        let (_dir, store, handle, claimed) = claimed_here(2).await;
        let stops: Vec<_> = claimed.iter().map(|c| register(&handle, c, None)).collect();
        let cancelled = &claimed[0].row.id;
        store.act(cancelled, domain::model::Action::Cancel).await.unwrap();

        let lease = Duration::from_secs(30);
        let heartbeat = Heartbeat::new(store.clone(), handle.clone(), lease);
        let report = heartbeat.run_once().await.unwrap();
        assert_eq!(
            report,
            HeartbeatReport {
                renewed: 2,
                cancelled: 1
            }
        );
        assert!(stops[0].is_cancelled() && !stops[1].is_cancelled());
        // Renewed here as in the database: a full lease from now.
        for a in handle.running.attempts.lock().unwrap().values() {
            assert!(a.lease_until > Instant::now() + lease - Duration::from_secs(5));
        }
        // The leases hold past the claim's second: the rescuer leaves them.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(store.rescue().await.unwrap().is_empty());
    }

    /// Two finished attempts whose completions could not be recorded yet: the recent one's lease
    /// is kept while its completion is retried; the one past the bound is let go, and the rescuer
    /// takes its execution back to run it again, rather than a completer stuck for good holding it.
    #[tokio::test]
    async fn a_finished_attempt_is_renewed_only_within_the_completion_bound() {
        let (_dir, store, handle, claimed) = claimed_here(2).await;
        let lease = Duration::from_secs(30);
        let bound = lease * COMPLETION_LEASES;
        let long_ago = Instant::now().checked_sub(bound + Duration::from_secs(1)).unwrap();
        register(&handle, &claimed[0], Some(Instant::now()));
        register(&handle, &claimed[1], Some(long_ago));

        let heartbeat = Heartbeat::new(store.clone(), handle.clone(), lease);
        assert_eq!(heartbeat.run_once().await.unwrap().renewed, 1);
        // Past the claim's one-second lease: only the unrenewed one has expired.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(store.rescue().await.unwrap(), vec![claimed[1].row.id.clone()]);
        assert_eq!(
            store.execution(&claimed[0].row.id).await.unwrap().unwrap().state,
            "running"
        );
    }
}
