//! Leader election: which process runs the maintenance needed once per database.
//!
//! A task per opened store keeps a [`LeaderSession`] (see `store::leader`; on PostgreSQL a lease
//! on a row, renewed every interval). Not leading, it tries every interval; leading, it renews
//! every interval and steps down when a renewal fails. A leader that stops gives the lease up
//! (another process leads within an interval); one that dies or whose connections go silent
//! stops renewing, and another takes over once the lease runs out (three intervals). SQLite: the
//! one process leads from its first try.
//!
//! Leadership can overlap briefly (a silent leader has not yet seen its renewal fail when the
//! lease runs out): the leader-only services stay correct when two processes run them at once,
//! as every process used to; the election saves the work, it does not guard the data.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::Store;
use crate::store::leader::LeaderSession;

/// How often non-leaders try, and the leader checks its session, when nothing asks for sooner.
pub const ELECT_EVERY: Duration = Duration::from_secs(5);

/// Whether this process leads; cheap to clone. The election runs while a clone is held.
#[derive(Clone)]
pub struct Elector {
    shared: Arc<Shared>,
}

struct Shared {
    store: Store,
    leader: watch::Receiver<bool>,
    every_ms: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last clone is gone: the task gives the lock up and ends.
        self.stop.cancel();
    }
}

/// The elections of this process, one per opened store.
static ELECTIONS: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

impl Elector {
    /// Starts an election of its own on `store` (as another process would), trying every `every`.
    pub fn start(store: Store, every: Duration) -> Elector {
        let (tx, leader) = watch::channel(false);
        let every_ms = Arc::new(AtomicU64::new(millis(every)));
        let stop = CancellationToken::new();
        tokio::spawn(campaign(store.clone(), tx, every_ms.clone(), stop.clone()));
        Elector {
            shared: Arc::new(Shared {
                store,
                leader,
                every_ms,
                stop,
            }),
        }
    }

    /// This process's election on `store` (or a clone of it): the executor and the sweep share
    /// one leader. Started by the first to ask; it tries as often as the most eager asks.
    pub fn shared(store: &Store, every: Duration) -> Elector {
        let mut elections = ELECTIONS.lock().expect("elections");
        elections.retain(|e| e.strong_count() > 0);
        let found = elections
            .iter()
            .filter_map(Weak::upgrade)
            .find(|s| s.store.same_pools(store));
        if let Some(shared) = found {
            shared.every_ms.fetch_min(millis(every), Ordering::Relaxed);
            return Elector { shared };
        }
        let elector = Elector::start(store.clone(), every);
        elections.push(Arc::downgrade(&elector.shared));
        elector
    }

    /// Whether this process leads now.
    pub fn is_leader(&self) -> bool {
        *self.shared.leader.borrow()
    }

    /// Leadership as it changes.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.shared.leader.clone()
    }

    /// How often non-leaders try and the leader checks its session.
    pub fn every(&self) -> Duration {
        Duration::from_millis(self.shared.every_ms.load(Ordering::Relaxed))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Tries to lead (or confirms leadership) every interval until `stop`, then resigns.
async fn campaign(store: Store, leader: watch::Sender<bool>, every_ms: Arc<AtomicU64>, stop: CancellationToken) {
    let mut session: Option<LeaderSession> = None;
    // Whether the latest try failed, so an unreachable database is said once, not every interval.
    let mut failing = false;
    loop {
        let every = Duration::from_millis(every_ms.load(Ordering::Relaxed));
        let tried = async {
            let s = match session.as_mut() {
                Some(s) => s,
                None => session.insert(store.leader_session(every).await?),
            };
            s.try_lead().await
        };
        let leading = tokio::select! {
            r = tried => r,
            _ = stop.cancelled() => break,
        };
        let was = *leader.borrow();
        match leading {
            Ok(now) => {
                failing = false;
                if now && !was {
                    tracing::info!("elected leader: this process runs the rescuer, pruner, discarder and sweep");
                }
                leader.send_replace(now);
            }
            Err(e) => {
                // A new session for the next try.
                session = None;
                if was {
                    tracing::warn!(error = %e, "cannot renew the lead; no longer leader");
                    leader.send_replace(false);
                } else if !failing {
                    tracing::warn!(error = %e, "cannot take part in the leader election; will try again");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => break,
        }
    }
    leader.send_replace(false);
    if let Some(s) = session {
        s.resign().await;
    }
}
