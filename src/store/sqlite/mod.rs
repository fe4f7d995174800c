//! The SQLite driver: one process owns the database file.
//!
//! Writes go through a pool of one connection, so the statements of a transaction see no one
//! else's writes and need no row locks; batches move as one JSON value per statement (see
//! `queue.rs`). Reads (the console, the API, idle workers' polls) use a pool of their own beside
//! the writer, never behind it.

mod ingest;
mod queue;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio_util::sync::CancellationToken;

use super::deadline;
use super::driver::{Campaign, Driver, Wake};
use super::executor::CompletionRow;
use super::ingest::{Ingested, NewEvent};
use super::rows::ClaimedRow;
use super::{Result, StoreError};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How a write transaction starts: take the write lock at once, so that another process
/// writing the same file is waited for (`busy_timeout`) rather than failing the transaction
/// when its first read turns into a write.
pub(super) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

#[derive(Debug, Clone)]
pub struct SqliteDriver {
    pub(super) readers: SqlitePool,
    /// One connection: writers take turns in order instead of busy-waiting on SQLite's lock
    /// (sleeps of up to 100 ms), and the writer's page cache stays warm (a connection drops its
    /// cache whenever another one has written).
    pub(super) writer: SqlitePool,
}

impl SqliteDriver {
    /// Opens (creating the file if needed) and migrates the database.
    pub(super) async fn open(url: &str, deadline: Duration) -> Result<SqliteDriver> {
        let open_err = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before Stripe hears 200, even across power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Another process holding the write lock is waited for this long, then the
            // statement fails as "locked" (unavailable), inside the call's deadline.
            .busy_timeout(deadline::lock_wait(deadline))
            // Every execution touches many index pages; keep them in memory (64 MiB per connection).
            .pragma("cache_size", "-65536")
            // The checkpointer copies the log into the database off the writers' path
            // (`checkpoint`); a commit does it itself only if the log grew this long (pages).
            .pragma("wal_autocheckpoint", "16384");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(deadline::acquire_wait(deadline))
            .connect_with(options.clone())
            .await
            .map_err(open_err)?;
        MIGRATIONS.run(&writer).await?;
        // Fresh statistics for the query planner (cheap: SQLite limits the work it does).
        sqlx::query("PRAGMA optimize=0x10002").execute(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .acquire_timeout(deadline::acquire_wait(deadline))
            .connect_with(options)
            .await
            .map_err(open_err)?;
        Ok(SqliteDriver { readers, writer })
    }
}

#[async_trait]
impl Driver for SqliteDriver {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn shared(&self) -> bool {
        false
    }

    /// One: the writer connection serialises them anyway.
    fn ingest_writers(&self) -> usize {
        1
    }

    fn sql(&self, statement: String) -> String {
        sql(statement)
    }

    fn begin_write(&self) -> &'static str {
        BEGIN_WRITE
    }

    /// Without statistics SQLite would pick an index on any column compared for equality; a
    /// unary `+` rules it out.
    fn not_indexed(&self, column: &str) -> String {
        format!("+{column}")
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

    /// On a reader: idle workers' polls do not queue behind the single writer.
    async fn claimable_exists(&self, now: i64, limited: &[(String, i64)]) -> Result<bool> {
        queue::claimable_exists(&self.readers, now, limited).await
    }

    async fn next_due_at(&self, now: i64) -> Result<Option<i64>> {
        queue::next_due_at(&self.readers, now).await
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

    /// One writer: claims take turns already.
    fn alert_claim_lock(&self) -> &'static str {
        ""
    }

    /// One writer: write transactions take turns already.
    fn alert_compose_lock(&self) -> Option<&'static str> {
        None
    }

    /// One process owns the file: it always leads.
    async fn leader_session(&self, _check_every: Duration, _deadline: Duration) -> Result<Option<Box<dyn Campaign>>> {
        Ok(None)
    }

    async fn live_processes(&self) -> Result<u32> {
        Ok(1)
    }

    /// One process: its workers are woken in memory.
    async fn notify_due(&self) -> Result<()> {
        Ok(())
    }

    async fn listen_due(&self, _wake: Wake, _check: Duration, _stop: CancellationToken) {}

    /// Copies what the write-ahead log holds into the database file, without waiting for (or
    /// blocking) readers and the writer. Left to the writer, each copy (every ~4 MB of log)
    /// stalls the commit that triggers it.
    async fn checkpoint(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.readers)
            .await?;
        Ok(())
    }

    async fn close(&self) {
        self.writer.close().await;
        self.readers.close().await;
    }
}

/// The statement as SQLite should be given it. SQLite finds a numbered parameter's name by a
/// linear scan, on every parse and every bind, so a multi-row statement with thousands of `$N`
/// costs quadratic time (it was half of the executor's CPU); anonymous `?` cost nothing.
/// `$1 … $n` appearing once each and in order become `?`; anything else (a parameter used
/// twice) is left as written.
pub(super) fn sql(sql: String) -> String {
    anonymous_parameters(&sql).unwrap_or(sql)
}

fn anonymous_parameters(sql: &str) -> Option<String> {
    let mut out = String::with_capacity(sql.len());
    let mut expected = 1u64;
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits = rest[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
        if rest[at + 1..at + 1 + digits].parse::<u64>().ok()? != expected {
            return None;
        }
        expected += 1;
        out.push('?');
        rest = &rest[at + 1 + digits..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::anonymous_parameters;

    #[test]
    fn numbered_parameters_in_order_become_anonymous() {
        assert_eq!(
            anonymous_parameters("UPDATE t SET a = $1 WHERE b IN ($2, $3) AND c = $4").as_deref(),
            Some("UPDATE t SET a = ? WHERE b IN (?, ?) AND c = ?")
        );
        assert_eq!(anonymous_parameters("SELECT 1"), Some("SELECT 1".to_string()));
    }

    #[test]
    fn reused_or_reordered_parameters_are_left_alone() {
        assert_eq!(anonymous_parameters("SELECT $1 WHERE a = $1"), None);
        assert_eq!(anonymous_parameters("SELECT $2, $1"), None);
        assert_eq!(anonymous_parameters("SELECT $1, $10"), None);
    }
}
