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
//! as every process used to; the election saves the work, it does not guard the data. To keep
//! the overlap short, a leader also counts its lease down on its own clock ([`Elector::holds_lead`]):
//! a process paused past its lease (stopped, starved) knows it lost the lead as soon as it
//! runs again, before its next try tells it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::Store;
use crate::store::leader::{LEASE_INTERVALS, LeaderSession};

/// Until when the lead is surely held, by this process's clock: `None` where it never runs out
/// (one process owns the database) or while not leading.
type LeaseEnd = Arc<Mutex<Option<tokio::time::Instant>>>;

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
    lease_end: LeaseEnd,
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
        let lease_end = LeaseEnd::default();
        tokio::spawn(campaign(
            store.clone(),
            tx,
            lease_end.clone(),
            every_ms.clone(),
            stop.clone(),
        ));
        Elector {
            shared: Arc::new(Shared {
                store,
                leader,
                lease_end,
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

    /// Whether this process leads and its lease has not run out by its own clock since the
    /// last renewal (a renewal that has not answered yet does not count).
    pub fn holds_lead(&self) -> bool {
        let end = *self.shared.lease_end.lock().expect("lease end");
        self.is_leader() && end.is_none_or(|end| tokio::time::Instant::now() < end)
    }

    /// Resolves once this process no longer holds the lead ([`Elector::holds_lead`]).
    pub async fn lost(&self) {
        let mut leader = self.watch();
        loop {
            if !self.holds_lead() {
                return;
            }
            let end = *self.shared.lease_end.lock().expect("lease end");
            let changed = async {
                if leader.changed().await.is_err() {
                    // The election ended: nothing will renew the lead.
                    std::future::pending::<()>().await;
                }
            };
            match end {
                Some(end) => tokio::select! {
                    _ = changed => {}
                    // A renewal moves the end on: checked again above.
                    _ = tokio::time::sleep_until(end) => {}
                },
                None => changed.await,
            }
        }
    }

    /// How long a lease lasts unrenewed: a sweep another process started within this may
    /// still be running.
    pub fn lease(&self) -> Duration {
        self.every() * LEASE_INTERVALS
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
async fn campaign(
    store: Store,
    leader: watch::Sender<bool>,
    lease_end: LeaseEnd,
    every_ms: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let mut session: Option<LeaderSession> = None;
    // Whether the latest try failed, so an unreachable database is said once, not every interval.
    let mut failing = false;
    loop {
        let every = Duration::from_millis(every_ms.load(Ordering::Relaxed));
        // The server counts the lease from its answer, which comes after this.
        let asked = tokio::time::Instant::now();
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
                let lease = session.as_ref().is_some_and(LeaderSession::is_lease);
                *lease_end.lock().expect("lease end") = (now && lease).then(|| asked + every * LEASE_INTERVALS);
                // Receivers hear of changes only: a renewal is no new election.
                leader.send_if_modified(|l| std::mem::replace(l, now) != now);
            }
            Err(e) => {
                // A new session for the next try.
                session = None;
                if was {
                    tracing::warn!(error = %e, "cannot renew the lead; no longer leader");
                    *lease_end.lock().expect("lease end") = None;
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
