//! No database call waits without a deadline.
//!
//! Each layer gets its own bound, all derived from one setting (`DEFERRAL_DB_TIMEOUT`):
//! - the client: every call of the executor, the ingest writer and the maintenance services runs
//!   under [`Store::bounded`]; past the deadline it fails as unavailable, whatever it waited on
//!   (a connection that went silent answers neither with data nor with an error);
//! - the pool: acquiring a connection, and checking one on its way back to the pool (sqlx pings
//!   it there without a timeout: a connection whose call was abandoned on a silent network would
//!   hold its slot until TCP gives up, and with every slot held the pool stalls for good);
//! - the server (PostgreSQL): `statement_timeout`, `lock_timeout`, and
//!   `idle_in_transaction_session_timeout`, which ends a transaction whose client went silent so
//!   the rows it locked (a claim's `FOR UPDATE`) do not stay locked; SQLite: `busy_timeout`.

use std::future::Future;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgPoolOptions;

use super::{Result, Store, StoreError};

/// `DEFERRAL_DB_TIMEOUT` unless set.
pub const DEFAULT_DB_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections idle longer than this are checked before use; busy ones are not (a round trip
/// per call), since every connection is checked on its way back to the pool.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

/// How long a lock held elsewhere (SQLite's write lock, a PostgreSQL row lock) is waited for:
/// half the deadline, so the statement fails by itself, as "locked", before the call's deadline.
pub(super) fn lock_wait(deadline: Duration) -> Duration {
    deadline / 2
}

/// How long a call may wait for a pooled connection (or to open one).
pub(super) fn acquire_wait(deadline: Duration) -> Duration {
    deadline / 2
}

/// PostgreSQL session settings, sent when each connection starts.
pub(super) fn pg_session_limits(deadline: Duration) -> [(&'static str, u128); 3] {
    [
        ("statement_timeout", deadline.as_millis()),
        ("lock_timeout", lock_wait(deadline).as_millis()),
        ("idle_in_transaction_session_timeout", (deadline * 2).as_millis()),
    ]
}

/// A PostgreSQL pool whose connections are checked within the deadline.
pub(super) fn pg_pool(size: u32, deadline: Duration) -> PgPoolOptions {
    let check = acquire_wait(deadline);
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(acquire_wait(deadline))
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            Box::pin(async move {
                if meta.idle_for < CHECK_IDLE_AFTER {
                    return Ok(true);
                }
                Ok(tokio::time::timeout(check, conn.ping()).await.is_ok_and(|r| r.is_ok()))
            })
        })
        // Returning `false` closes the connection (without waiting for an answer) instead of
        // letting sqlx's own unbounded check wait on it.
        .after_release(move |conn, _| {
            Box::pin(async move { Ok(tokio::time::timeout(check, conn.ping()).await.is_ok_and(|r| r.is_ok())) })
        })
}

impl Store {
    /// Runs one database call within the deadline; past it the call is abandoned (its connection
    /// is checked on the way back to the pool, and closed if it does not answer) and fails as
    /// unavailable, like a refused connection.
    pub(crate) async fn bounded<T>(&self, what: &'static str, call: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.deadline, call)
            .await
            .unwrap_or(Err(StoreError::Timeout {
                what,
                after: self.deadline,
            }))
    }

    /// The longest a call waits (`DEFERRAL_DB_TIMEOUT`).
    pub fn deadline(&self) -> Duration {
        self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Db;

    /// Not a multiple of a second on any layer, so PostgreSQL shows each setting in ms.
    const DEADLINE: Duration = Duration::from_millis(2200);

    /// Every pool's connections (several held at once, so not one connection seen twice) carry
    /// the deadline rules above, as the database itself reports them.
    async fn sessions_carry_the_rules(store: &Store) {
        for db in [&store.writer, &store.db] {
            match db {
                Db::Sqlite(pool) => {
                    let mut held = Vec::new();
                    for _ in 0..pool.options().get_max_connections().min(3) {
                        let mut c = pool.acquire().await.unwrap();
                        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
                            .fetch_one(&mut *c)
                            .await
                            .unwrap();
                        assert_eq!(busy as u128, lock_wait(DEADLINE).as_millis());
                        held.push(c);
                    }
                }
                Db::Postgres(pool) => {
                    let mut held = Vec::new();
                    for _ in 0..3 {
                        let mut c = pool.acquire().await.unwrap();
                        for (name, ms) in pg_session_limits(DEADLINE) {
                            let shown: String = sqlx::query_scalar(&format!("SHOW {name}"))
                                .fetch_one(&mut *c)
                                .await
                                .unwrap();
                            assert_eq!(shown, format!("{ms}ms"), "{name}");
                        }
                        held.push(c);
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn sqlite_connections_wait_on_a_lock_for_half_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("d.db").display());
        sessions_carry_the_rules(&Store::open_with(&url, DEADLINE).await.unwrap()).await;
    }

    /// On a fresh database of `DEFERRAL_TEST_POSTGRES`, with `DEFERRAL_TEST_BACKEND=postgres`.
    #[tokio::test]
    async fn postgres_sessions_carry_the_statement_lock_and_idle_transaction_timeouts() {
        if std::env::var("DEFERRAL_TEST_BACKEND").as_deref() != Ok("postgres") {
            eprintln!("skipped: PostgreSQL only (DEFERRAL_TEST_BACKEND=postgres)");
            return;
        }
        let server =
            std::env::var("DEFERRAL_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let name = format!("deferral_test_{}", rand::random::<u64>());
        let admin = sqlx::PgPool::connect(&format!("{server}/postgres")).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        let store = Store::open_with(&format!("{server}/{name}"), DEADLINE).await.unwrap();
        sessions_carry_the_rules(&store).await;
        store.close().await;
        sqlx::query(&format!("DROP DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
    }
}
