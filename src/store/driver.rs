//! The driver interface: every operation whose SQL or behaviour differs between backends,
//! named by what the store uses it for. `sqlite/` and `postgres/` each implement it and own
//! their SQL; nothing outside those two folders asks which backend it is talking to.
//!
//! What both backends take as written (the console's reads, the records, the audit log) runs
//! through [`super::Db`] instead: one statement, compiled for both pools.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::Result;
use super::executor::CompletionRow;
use super::ingest::{Ingested, NewEvent};
use super::rows::ClaimedRow;

/// A process's campaign in the leader election (a backend's; see `store::leader`).
#[async_trait]
pub(crate) trait Campaign: Send + Sync {
    /// Takes the lead if free, or checks it is still held; an error ends the session.
    async fn try_lead(&mut self) -> Result<bool>;
    async fn resign(self: Box<Self>);
}

/// Calls `wake` whenever another process commits due executions.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

#[async_trait]
pub(crate) trait Driver: Send + Sync + std::fmt::Debug {
    /// `sqlite` or `postgres`, as `/healthz` reports it.
    fn name(&self) -> &'static str;

    /// Whether several processes may share the database: they then split the Stripe budget,
    /// elect a leader and wake each other.
    fn shared(&self) -> bool;

    /// How many ingest batches may be written at the same time.
    fn ingest_writers(&self) -> usize;

    /// A statement as this backend should be given it (placeholders written `$1`, `$2`, …).
    fn sql(&self, sql: String) -> String;

    /// How a write transaction starts.
    fn begin_write(&self) -> &'static str;

    /// `column` in a comparison no index may serve (see each driver for why it matters).
    fn not_indexed(&self, column: &str) -> String;

    /// Stores new events with one execution each, in one transaction; known ids are reported
    /// with their existing execution. `firsts` are the indexes of each id's first copy.
    async fn ingest(&self, events: &[NewEvent], firsts: &[usize], new_ids: &[String], now: i64) -> Result<Ingested>;

    /// Starts up to `limit` due executions for `owner` (types in `skip_types` left out), one per
    /// Stripe object at a time and in the order of the events' `created`.
    async fn claim(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
        skip_types: &[String],
    ) -> Result<Vec<ClaimedRow>>;

    /// As `claim`, for one type with a concurrency limit across every process.
    #[allow(clippy::too_many_arguments)]
    async fn claim_type(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        event_type: &str,
        type_limit: i64,
        max: i64,
    ) -> Result<Vec<ClaimedRow>>;

    /// Whether a claim could start anything now; each type in `limited` (with its concurrency
    /// limit) counts only while fewer of it run than its limit.
    async fn claimable_exists(&self, now: i64, limited: &[(String, i64)]) -> Result<bool>;

    /// When the next scheduled execution falls due, if any waits in the future.
    async fn next_due_at(&self, now: i64) -> Result<Option<i64>>;

    /// Records finished attempts while their lease is `owner`'s; returns how many applied.
    async fn complete(&self, owner: &str, rows: &[CompletionRow<'_>]) -> Result<u64>;

    /// Extends `owner`'s leases on `running` to `until`: `(id, cancel requested)` of each renewed.
    async fn heartbeat(&self, owner: &str, running: &[String], until: i64) -> Result<Vec<(String, bool)>>;

    /// Executions whose lease expired go back to `scheduled` (or fail, out of attempts), their
    /// lost attempt recorded; up to `limit` in one statement. Returns their ids.
    async fn rescue(&self, now: i64, limit: i64) -> Result<Vec<String>>;

    /// How a claim of alert deliveries keeps concurrent claims apart: appended to the
    /// statement's row selection (see `Store::claim_deliveries`).
    fn alert_claim_lock(&self) -> &'static str;

    /// A statement that takes the alert composer's lock for the rest of the current write
    /// transaction and answers whether it got it (another process composing now keeps it);
    /// `None` where one writer serialises transactions anyway.
    fn alert_compose_lock(&self) -> Option<&'static str>;

    /// A campaign for the leader election, or `None` where one process owns the database (it
    /// always leads). `check_every`: how often it will be asked.
    async fn leader_session(&self, check_every: Duration, deadline: Duration) -> Result<Option<Box<dyn Campaign>>>;

    /// How many processes use the database now.
    async fn live_processes(&self) -> Result<u32>;

    /// Wakes idle workers in the other processes.
    async fn notify_due(&self) -> Result<()>;

    /// Calls `wake` on every other process's `notify_due` until `stop`; returns at once where
    /// there is no other process. `check`: how long the connection may stay silent.
    async fn listen_due(&self, wake: Wake, check: Duration, stop: CancellationToken);

    /// Background upkeep of the database file, off the writers' path.
    async fn checkpoint(&self) -> Result<()>;

    /// Closes the pools.
    async fn close(&self);
}
