//! Durable state: events, executions, attempts and the Stripe records.
//!
//! One `Store` over either backend. Its API is split by use: `ingest` (verified events in),
//! `executor` (claim, complete, renew), `maintenance` (rescue, discard, prune), `queries` and
//! `filter` (what the console and the API read), `actions` (operators' commands), and the
//! records, pauses, alerts, sweeps and audit log beside them.
//!
//! Below it, a [`Driver`] per backend (`sqlite/`, `postgres/`) owns every statement whose SQL or
//! behaviour differs; nothing else asks which backend it is on. Statements both take as written
//! run on [`Db`], the pools, through `on_db!`.
//!
//! Times are integers: milliseconds since the Unix epoch (`*_at`), except values copied from
//! Stripe, which keep Stripe's seconds (`event_created`, `stripe_updated_at`).

mod actions;
pub mod alerts;
mod claim_rules;
pub mod console;
mod deadline;
pub mod driver;
pub mod event_types;
pub mod executor;
mod filter;
pub mod ingest;
pub mod leader;
mod maintenance;
pub mod overview;
pub mod pauses;
mod postgres;
mod queries;
pub mod records;
pub mod records_read;
pub mod rows;
mod sqlite;
pub mod sweeps;

use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgPool, SqlitePool};

pub use actions::{Acted, ActionError};
pub use deadline::DEFAULT_DB_TIMEOUT;
use driver::Driver;
pub use executor::{Completion, Finish, Renewed};
pub use filter::parse_time_bound;
pub use ingest::{IngestOutcome, NewEvent};
pub use pauses::PauseError;
pub use postgres::WAKE_CHANNEL;
pub use rows::{Claimed, ExecutionRow, rfc3339};
pub use sweeps::{SweepCounts, SweepRow};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DATABASE_URL must start with sqlite:// or postgres://, got `{0}`")]
    UnsupportedUrl(String),
    #[error("cannot open the database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// No answer within the deadline (`DEFERRAL_DB_TIMEOUT`): a connection that went silent, a
    /// database too busy to answer, a lock held elsewhere. Unavailable, like a refused connection.
    #[error("the database did not answer ({what}) within {}", humantime::format_duration(*.after))]
    Timeout { what: &'static str, after: Duration },
}

impl StoreError {
    /// The database could not be reached or was busy (as opposed to a query it refused):
    /// worth trying again.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Timeout { .. } => true,
            StoreError::Db(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::Io(_)
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed,
            ) => true,
            // SQLite: locked. PostgreSQL (SQLSTATE): connection exceptions (08…), the server shutting
            // down, restarting or starting up (57P01–57P03), out of resources such as connections (53…),
            // the transaction rollbacks a retry resolves (40001 serialization, 40P01 deadlock), and
            // our own deadlines: `statement_timeout` (57014), `lock_timeout` (55P03) and
            // `idle_in_transaction_session_timeout` (25P03).
            StoreError::Db(sqlx::Error::Database(e)) => {
                e.message().contains("locked")
                    || e.code().is_some_and(|c| {
                        c.starts_with("08")
                            || c.starts_with("57P")
                            || c.starts_with("53")
                            || ["40001", "40P01", "57014", "55P03", "25P03"].contains(&c.as_ref())
                    })
            }
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The pools, for statements both backends take as written.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same body against whichever pool the store holds; the body is
/// compiled once per backend, so row decoding is checked for both.
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

#[derive(Clone, Debug)]
pub struct Store {
    /// Reads: the console, the API, the gauges.
    pub(crate) db: Db,
    /// Writes (and on PostgreSQL the executor's reads). On SQLite a pool of one connection
    /// (see `sqlite/`); on PostgreSQL planned for index scans only (see `postgres/`).
    pub(crate) writer: Db,
    /// Everything that differs between the backends.
    pub(crate) driver: Arc<dyn Driver>,
    /// The longest any one call may take (`DEFERRAL_DB_TIMEOUT`); see `deadline.rs`.
    pub(crate) deadline: Duration,
}

impl Store {
    /// Opens (creating an SQLite file if needed) and migrates the database, with the default
    /// deadline on every call ([`DEFAULT_DB_TIMEOUT`]).
    pub async fn open(url: &str) -> Result<Store> {
        Self::open_with(url, DEFAULT_DB_TIMEOUT).await
    }

    /// Opens and migrates the database; no call of the executor, the ingest writer or the
    /// maintenance services then waits longer than `deadline` on it (see `deadline.rs`).
    pub async fn open_with(url: &str, deadline: Duration) -> Result<Store> {
        if url.starts_with("sqlite:") {
            let driver = sqlite::SqliteDriver::open(url, deadline).await?;
            Ok(Store {
                db: Db::Sqlite(driver.readers.clone()),
                writer: Db::Sqlite(driver.writer.clone()),
                driver: Arc::new(driver),
                deadline,
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let driver = postgres::PostgresDriver::open(url, deadline).await?;
            Ok(Store {
                db: Db::Postgres(driver.readers.clone()),
                writer: Db::Postgres(driver.writer.clone()),
                driver: Arc::new(driver),
                deadline,
            })
        } else {
            Err(StoreError::UnsupportedUrl(url.to_string()))
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.driver.name()
    }

    /// Whether other processes may share this database (they then split the Stripe budget,
    /// elect a leader and wake each other).
    pub fn shared(&self) -> bool {
        self.driver.shared()
    }

    /// How many ingest batches may be written at once.
    pub fn ingest_writers(&self) -> usize {
        self.driver.ingest_writers()
    }

    /// How many Deferral processes use this database now (they split the Stripe budget).
    pub async fn live_processes(&self) -> Result<u32> {
        self.driver.live_processes().await
    }

    /// Answers only when the database does.
    pub async fn ping(&self) -> Result<()> {
        on_db!(&self.db, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Wakes idle workers in every other process (nothing to do where there is none).
    pub async fn notify_due(&self) -> Result<()> {
        self.driver.notify_due().await
    }

    /// Calls `wake` whenever another process commits due executions, until `stop`.
    pub async fn listen_due(&self, wake: driver::Wake, stop: tokio_util::sync::CancellationToken) {
        self.driver.listen_due(wake, self.deadline, stop).await
    }

    /// Background upkeep of the database file, off the writers' path.
    pub async fn checkpoint(&self) -> Result<()> {
        self.driver.checkpoint().await
    }

    pub async fn close(&self) {
        self.driver.close().await
    }
}

/// `($1, $2, …), ($k, …)`: `rows` tuples of `width` placeholders, numbered from `first`,
/// for multi-row statements.
pub(crate) fn values_list(rows: usize, width: usize, first: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders_from(width, first + r * width)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$1, $2, …, $n`.
pub(crate) fn placeholders(n: usize) -> String {
    placeholders_from(n, 1)
}

/// `$first, …, $(first + n - 1)`.
pub(crate) fn placeholders_from(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
