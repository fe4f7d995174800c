//! The leader election's campaign: a lease on a row of `leader` (migration 0015). The leader
//! renews it every interval; when it expires unrenewed (the leader died, or its connections went
//! silent) the next process to try takes it. A lease rather than an advisory lock: a session
//! left mid-protocol (a NAT entry lost) keeps its locks for good, and with them the lead, while
//! the process behind it can no longer act; it cannot renew a lease.
//!
//! Times are the server's (`clock_timestamp()`), so processes whose clocks disagree still agree
//! on when a lease ends. Every statement waits no longer than the store's deadline.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;

use super::super::driver::Campaign;
use super::super::leader::LEASE_INTERVALS;
use super::super::{Result, StoreError};

/// The row of the maintenance leader.
const ELECTION: &str = "maintenance";

const NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

/// A campaign of this process: `owner` names it (this process's name and a random suffix, so
/// two stores in one process are two candidates).
pub(super) fn session(pool: &PgPool, check_every: Duration, deadline: Duration) -> Box<dyn Campaign> {
    Box::new(Session {
        pool: pool.clone(),
        owner: format!("{}/{:08x}", super::process_name(), rand::random::<u32>()),
        lease: check_every * LEASE_INTERVALS,
        deadline,
    })
}

struct Session {
    pool: PgPool,
    owner: String,
    lease: Duration,
    deadline: Duration,
}

#[async_trait]
impl Campaign for Session {
    /// Takes the lease if it is free or expired, renews it if it is ours; answers whether it is ours.
    async fn try_lead(&mut self) -> Result<bool> {
        let sql = format!(
            "INSERT INTO leader AS l (name, owner, expires_at) VALUES ($1, $2, {NOW_MS} + $3)
             ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
             WHERE l.owner = EXCLUDED.owner OR l.expires_at < {NOW_MS}
             RETURNING owner"
        );
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        let claim = sqlx::query_scalar::<_, String>(&sql)
            .bind(ELECTION)
            .bind(&self.owner)
            .bind(lease_ms)
            .fetch_optional(&self.pool);
        match tokio::time::timeout(self.deadline, claim).await {
            Ok(answer) => Ok(answer?.is_some()),
            Err(_) => Err(StoreError::Timeout {
                what: "leader election",
                after: self.deadline,
            }),
        }
    }

    /// Gives the lease up at once, so another process leads at its next try.
    async fn resign(self: Box<Self>) {
        let resign = sqlx::query("DELETE FROM leader WHERE name = $1 AND owner = $2")
            .bind(ELECTION)
            .bind(&self.owner)
            .execute(&self.pool);
        let _ = tokio::time::timeout(self.deadline, resign).await;
    }
}
