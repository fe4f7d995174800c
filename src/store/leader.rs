//! Leader election: one process at a time leads the processes sharing a database, and only
//! it runs the maintenance that needs doing once per database (`executor::maintenance`'s
//! elector). How a backend elects is its driver's (`postgres/leader.rs`); where one process owns
//! the database (SQLite) it always leads.

use std::time::Duration;

use super::driver::Campaign;
use super::{Result, Store};

/// How many election intervals a lease lasts where the backend elects by lease: a leader that
/// misses two renewals in a row (a slow database, a late timer) keeps it; one that misses three
/// has lost it.
pub const LEASE_INTERVALS: u32 = 3;

/// A process's part in the election: see [`Store::leader_session`].
pub struct LeaderSession {
    /// `None` where one process owns the database: nothing to hold.
    campaign: Option<Box<dyn Campaign>>,
}

impl Store {
    /// Opens a session for the leader election; `check_every` is how often its owner will call
    /// [`LeaderSession::try_lead`].
    pub async fn leader_session(&self, check_every: Duration) -> Result<LeaderSession> {
        Ok(LeaderSession {
            campaign: self.driver.leader_session(check_every, self.deadline).await?,
        })
    }

    /// Whether `other` is this store or a clone of it (the same driver, so the same pools):
    /// one election per opened store, shared by the parts of the process that use it.
    pub fn same_pools(&self, other: &Store) -> bool {
        std::sync::Arc::ptr_eq(&self.driver, &other.driver)
    }
}

impl LeaderSession {
    /// Answers whether this session leads now: takes the lead if it is free, or checks that it
    /// still holds it. An error means the session is gone or unusable: whatever it held is
    /// released, and a new session must be opened.
    pub async fn try_lead(&mut self) -> Result<bool> {
        match &mut self.campaign {
            Some(campaign) => campaign.try_lead().await,
            None => Ok(true),
        }
    }

    /// Whether the lead runs out unless renewed (a lease of [`LEASE_INTERVALS`] intervals);
    /// not where one process owns the database.
    pub fn is_lease(&self) -> bool {
        self.campaign.is_some()
    }

    /// Gives the lead up; another process can lead at its next try.
    pub async fn resign(self) {
        if let Some(campaign) = self.campaign {
            campaign.resign().await;
        }
    }
}
