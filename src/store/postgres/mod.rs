//! The PostgreSQL driver: several processes share the database.
//!
//! Claimers in different processes take different rows (`FOR UPDATE SKIP LOCKED`) and take
//! turns per Stripe object (`queue.rs`); processes wake each other with LISTEN/NOTIFY
//! (`wakeups.rs`) and elect a leader by a lease on a row (`leader.rs`).

mod ingest;
mod leader;
mod queue;
mod wakeups;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgPool};
use tokio_util::sync::CancellationToken;

use super::deadline;
use super::driver::{Campaign, Driver, Wake};
use super::executor::CompletionRow;
use super::ingest::{Ingested, NewEvent};
use super::rows::ClaimedRow;
use super::{Result, StoreError};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The channel new due executions are announced on.
pub const WAKE_CHANNEL: &str = "deferral_executions";

#[derive(Debug, Clone)]
pub struct PostgresDriver {
    /// The console, the API, the gauges: free to plan any scan.
    pub(super) readers: PgPool,
    /// Writes and the executor's reads, planned for index scans only (see `open`).
    pub(super) writer: PgPool,
}

impl PostgresDriver {
    /// Connects and migrates the database.
    pub(super) async fn open(url: &str, deadline: Duration) -> Result<PostgresDriver> {
        let open_err = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        // Named per process, so the processes sharing the database can be counted.
        let options = PgConnectOptions::from_str(url)
            .map_err(open_err)?
            .application_name(process_name());
        // Migrations run without the deadline: building an index on a large table may take long.
        let mut migrating = sqlx::PgConnection::connect_with(&options).await.map_err(open_err)?;
        // sqlx takes an advisory lock here, so processes starting together migrate once.
        MIGRATIONS.run(&mut migrating).await?;
        let _ = migrating.close().await;
        let options = options.options(deadline::pg_session_limits(deadline));
        // The writers' statements (ingest, claims, completions, leases) each find their rows
        // by key or walk an index in order up to a LIMIT; they must never read a whole table.
        // Without statistics (a new table, or autovacuum off) the planner takes the table for
        // a few pages and chose sequential scans inside nested loops: 560 ms per completion
        // of 512. A bitmap scan reads every index entry of finished rows again on every call,
        // while a plain index scan marks each one dead the first time (26 ms per claim
        // against 0.35 ms over 68,000 such entries). Both are ruled out on this pool only:
        // the console's filters (the readers) can need them.
        let writer_options = options
            .clone()
            .options([("enable_seqscan", "off"), ("enable_bitmapscan", "off")]);
        let writer = deadline::pg_pool(12, deadline)
            .connect_with(writer_options)
            .await
            .map_err(open_err)?;
        let readers = deadline::pg_pool(8, deadline)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        Ok(PostgresDriver { readers, writer })
    }
}

#[async_trait]
impl Driver for PostgresDriver {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn shared(&self) -> bool {
        true
    }

    /// Several: PostgreSQL commits them in parallel.
    fn ingest_writers(&self) -> usize {
        4
    }

    /// As written: PostgreSQL numbers parameters itself.
    fn sql(&self, statement: String) -> String {
        statement
    }

    fn begin_write(&self) -> &'static str {
        "BEGIN"
    }

    /// PostgreSQL plans by statistics: no hint needed.
    fn not_indexed(&self, column: &str) -> String {
        column.to_string()
    }

    async fn ingest(&self, events: &[NewEvent], firsts: &[usize], new_ids: &[String], now: i64) -> Result<Ingested> {
        ingest::ingest(&self.writer, events, firsts, new_ids, now).await
    }

    async fn claim(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
        skip_types: &[String],
    ) -> Result<Vec<ClaimedRow>> {
        queue::claim(&self.writer, owner, now, lease_until, limit, skip_types).await
    }

    async fn claim_type(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        event_type: &str,
        type_limit: i64,
        max: i64,
    ) -> Result<Vec<ClaimedRow>> {
        queue::claim_type(&self.writer, owner, now, lease_until, event_type, type_limit, max).await
    }

    /// On the writers' pool, planned for the due index's plain scan.
    async fn claimable_exists(&self, now: i64, limited: &[(String, i64)]) -> Result<bool> {
        queue::claimable_exists(&self.writer, now, limited).await
    }

    async fn next_due_at(&self, now: i64) -> Result<Option<i64>> {
        queue::next_due_at(&self.writer, now).await
    }

    async fn complete(&self, owner: &str, rows: &[CompletionRow<'_>]) -> Result<u64> {
        queue::complete(&self.writer, owner, rows).await
    }

    async fn heartbeat(&self, owner: &str, running: &[String], until: i64) -> Result<Vec<(String, bool)>> {
        queue::heartbeat(&self.writer, owner, running, until).await
    }

    async fn rescue(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        queue::rescue(&self.writer, now, limit).await
    }

    /// Claimers skip the rows another claim has locked.
    fn alert_claim_lock(&self) -> &'static str {
        " FOR UPDATE SKIP LOCKED"
    }

    /// Transaction-scoped: it ends with the transaction, whatever becomes of the process.
    fn alert_compose_lock(&self) -> Option<&'static str> {
        Some("SELECT pg_try_advisory_xact_lock(hashtext('deferral-alert-compose'))")
    }

    async fn leader_session(&self, check_every: Duration, deadline: Duration) -> Result<Option<Box<dyn Campaign>>> {
        Ok(Some(leader::session(&self.writer, check_every, deadline)))
    }

    /// Distinct process names among the database's sessions: a process that dies drops out
    /// when its connections close.
    async fn live_processes(&self) -> Result<u32> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(DISTINCT application_name) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name LIKE 'deferral/%'",
        )
        .fetch_one(&self.readers)
        .await?;
        Ok(n.clamp(1, u32::MAX as i64) as u32)
    }

    async fn notify_due(&self) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(WAKE_CHANNEL)
            .execute(&self.readers)
            .await?;
        Ok(())
    }

    async fn listen_due(&self, wake: Wake, check: Duration, stop: CancellationToken) {
        wakeups::listen(self.readers.clone(), wake, check, stop).await
    }

    /// PostgreSQL checkpoints on its own.
    async fn checkpoint(&self) -> Result<()> {
        Ok(())
    }

    async fn close(&self) {
        self.writer.close().await;
        self.readers.close().await;
    }
}

/// This process's name on its PostgreSQL sessions: `deferral/{pid}-{random}`.
fn process_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| format!("deferral/{}-{:08x}", std::process::id(), rand::random::<u32>()))
}
