//! Durable state: events, executions, attempts and the Stripe records.
//!
//! One `Store` over either backend. SQL is shared where the two dialects agree
//! (`$N` placeholders work on both); what differs lives in `dialect.rs`.
//! Times are integers: milliseconds since the Unix epoch (`*_at`), except values
//! copied from Stripe, which keep Stripe's seconds (`event_created`, `stripe_updated_at`).

pub mod alerts;
pub mod console;
mod deadline;
mod dialect;
pub mod event_types;
pub mod executions;
pub mod ingest;
pub mod leader;
pub mod overview;
pub mod pauses;
pub mod records;
pub mod records_read;
pub mod sweeps;

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use deadline::DEFAULT_DB_TIMEOUT;
pub use executions::*;
pub use ingest::{IngestOutcome, NewEvent};
pub use pauses::PauseError;
pub use sweeps::{SweepCounts, SweepLock, SweepRow};

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

/// The PostgreSQL channel new due executions are announced on.
pub const WAKE_CHANNEL: &str = "deferral_executions";

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

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
    /// Writes (and on PostgreSQL the executor's reads). On SQLite a pool of one connection:
    /// writers take turns in order instead of busy-waiting on SQLite's lock (sleeps of up to
    /// 100 ms), and the writer's page cache stays warm (a connection drops its cache whenever
    /// another one has written). On PostgreSQL planned for index scans only (see `Store::open`).
    pub(crate) writer: Db,
    /// The longest any one call may take (`DEFERRAL_DB_TIMEOUT`); see `deadline.rs`.
    pub(crate) deadline: Duration,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Opens (creating an SQLite file if needed) and migrates the database, with the default
    /// deadline on every call ([`DEFAULT_DB_TIMEOUT`]).
    pub async fn open(url: &str) -> Result<Store> {
        Self::open_with(url, DEFAULT_DB_TIMEOUT).await
    }

    /// Opens and migrates the database; no call of the executor, the ingest writer or the
    /// maintenance services then waits longer than `deadline` on it (see `deadline.rs`).
    pub async fn open_with(url: &str, deadline: Duration) -> Result<Store> {
        let open_err = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        let (db, writer) = if url.starts_with("sqlite:") {
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
                // The executor's checkpointer copies the log into the database off the writers' path
                // (`Store::checkpoint`); a commit does it itself only if the log grew this long (pages).
                .pragma("wal_autocheckpoint", "16384");
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(deadline::acquire_wait(deadline))
                .connect_with(options.clone())
                .await
                .map_err(open_err)?;
            SQLITE_MIGRATIONS.run(&writer).await?;
            // Fresh statistics for the query planner (cheap: SQLite limits the work it does).
            sqlx::query("PRAGMA optimize=0x10002").execute(&writer).await?;
            let readers = SqlitePoolOptions::new()
                .max_connections(8)
                .min_connections(1)
                .acquire_timeout(deadline::acquire_wait(deadline))
                .connect_with(options)
                .await
                .map_err(open_err)?;
            (Db::Sqlite(readers), Db::Sqlite(writer))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // Named per process, so the processes sharing the database can be counted.
            let options = PgConnectOptions::from_str(url)
                .map_err(open_err)?
                .application_name(process_name());
            // Migrations run without the deadline: building an index on a large table may take long.
            let mut migrating = sqlx::PgConnection::connect_with(&options).await.map_err(open_err)?;
            // sqlx takes an advisory lock here, so processes starting together migrate once.
            POSTGRES_MIGRATIONS.run(&mut migrating).await?;
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
            (Db::Postgres(readers), Db::Postgres(writer))
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        Ok(Store { db, writer, deadline })
    }

    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.db {
            Db::Postgres(pool) => Some(pool),
            Db::Sqlite(_) => None,
        }
    }

    /// How many Deferral processes use this database now (they split the Stripe budget).
    /// PostgreSQL: distinct process names among its sessions; SQLite: this process.
    pub async fn live_processes(&self) -> Result<u32> {
        let Db::Postgres(pool) = &self.db else { return Ok(1) };
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(DISTINCT application_name) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name LIKE 'deferral/%'",
        )
        .fetch_one(pool)
        .await?;
        Ok(n.clamp(1, u32::MAX as i64) as u32)
    }

    /// Answers only when the database does.
    pub async fn ping(&self) -> Result<()> {
        on_db!(&self.db, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// PostgreSQL: wake idle workers in every process (LISTEN/NOTIFY). SQLite: one process, nothing to do.
    pub async fn notify_due(&self) -> Result<()> {
        if let Db::Postgres(pool) = &self.db {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(WAKE_CHANNEL)
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// SQLite: copies what the write-ahead log holds into the database file, without waiting
    /// for (or blocking) readers and the writer, so commits never stall to do it.
    pub async fn checkpoint(&self) -> Result<()> {
        if let Db::Sqlite(pool) = &self.db {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(pool).await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        on_db!(&self.writer, pool => pool.close().await);
        on_db!(&self.db, pool => pool.close().await)
    }
}

impl Db {
    /// The statement as this backend should be given it. SQLite finds a numbered parameter's
    /// name by a linear scan, on every parse and every bind, so a multi-row statement with
    /// thousands of `$N` costs quadratic time (it was half of the executor's CPU); anonymous
    /// `?` cost nothing. On SQLite, `$1 … $n` appearing once each and in order become `?`;
    /// anything else (a parameter used twice) is left as written.
    pub(crate) fn sql(&self, sql: String) -> String {
        match self {
            Db::Postgres(_) => sql,
            Db::Sqlite(_) => anonymous_parameters(&sql).unwrap_or(sql),
        }
    }

    /// How a write transaction starts. SQLite: take the write lock at once, so that another
    /// process writing the same file is waited for (`busy_timeout`) rather than failing the
    /// transaction when its first read turns into a write.
    pub(crate) fn begin_write(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "BEGIN IMMEDIATE",
            Db::Postgres(_) => "BEGIN",
        }
    }
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

/// This process's name on its PostgreSQL sessions: `deferral/{pid}-{random}`.
fn process_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| format!("deferral/{}-{:08x}", std::process::id(), rand::random::<u32>()))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
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
        assert_eq!(anonymous_parameters("SELECT 1").as_deref(), Some("SELECT 1"));
    }

    #[test]
    fn reused_or_reordered_parameters_are_left_alone() {
        assert_eq!(anonymous_parameters("SELECT $1 WHERE a = $1"), None);
        assert_eq!(anonymous_parameters("SELECT $2, $1"), None);
        assert_eq!(anonymous_parameters("SELECT $1, $10"), None);
    }
}
