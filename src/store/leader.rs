//! Leader election: on PostgreSQL one process at a time holds a session-level advisory lock on a
//! connection of its own, and only that process runs the maintenance that needs doing once per
//! database (the rescuer, the pruner, the discarder, the reconciliation sweep). The lock ends with
//! its session, so a leader that dies, or whose connection drops, leads no more and another
//! process takes the lock at its next try. SQLite: one process owns the database; it always leads.
//!
//! Additive for now: the per-backend drivers will own this (issue 19).

use std::time::Duration;

use sqlx::{Connection, PgConnection};

use super::{Db, Result, Store, StoreError};

/// The leader lock. Two keys, and a first key of its own: it never equals the sweep's lock
/// (`hashtext('deferral-reconcile'), 0`), the per-object locks (`hashtext('deferral-object'), …`)
/// or the single-key locks (another key space).
const LOCK: &str = "hashtext('deferral-leader'), 0";

/// A connection of its own (not pooled) that takes part in the leader election, then, once it
/// holds the lock, keeps it. Every statement waits no longer than the store's deadline; a session
/// that failed or did not answer in time is closed (which releases the lock) and must not be
/// used again: open another with [`Store::leader_session`].
pub struct LeaderSession {
    /// `None` on SQLite: nothing to hold.
    connection: Option<PgConnection>,
    leading: bool,
    deadline: Duration,
}

impl Store {
    /// Opens a session for the leader election. PostgreSQL: a new connection with the readers'
    /// settings (deadlines, this process's name), outside the pools, with TCP keepalives every
    /// `check_every` so the server itself notices a leader whose host vanished and ends its
    /// session (releasing the lock) within a few of them. SQLite: a session that always leads.
    pub async fn leader_session(&self, check_every: Duration) -> Result<LeaderSession> {
        let deadline = self.deadline;
        let Db::Postgres(pool) = &self.db else {
            return Ok(LeaderSession {
                connection: None,
                leading: false,
                deadline,
            });
        };
        let idle = check_every.as_secs().max(1);
        let options = (*pool.connect_options()).clone().options([
            ("tcp_keepalives_idle", idle),
            ("tcp_keepalives_interval", 1),
            ("tcp_keepalives_count", 3),
        ]);
        let connect = async { Ok(PgConnection::connect_with(&options).await?) };
        let connection = self.bounded("leader session", connect).await?;
        Ok(LeaderSession {
            connection: Some(connection),
            leading: false,
            deadline,
        })
    }

    /// Whether `other` is this store or a clone of it (the same pools): one election per opened
    /// store, shared by the parts of the process that use it.
    pub fn same_pools(&self, other: &Store) -> bool {
        match (&self.db, &other.db) {
            (Db::Postgres(a), Db::Postgres(b)) => std::sync::Arc::ptr_eq(&a.connect_options(), &b.connect_options()),
            (Db::Sqlite(a), Db::Sqlite(b)) => std::sync::Arc::ptr_eq(&a.connect_options(), &b.connect_options()),
            _ => false,
        }
    }
}

impl LeaderSession {
    /// Answers whether this session leads now. Not leading yet: tries to take the lock
    /// (`pg_try_advisory_lock`, never waiting for it). Leading: checks that the session (and so
    /// the lock) is still alive (`SELECT 1`). An error means the session is gone or unusable: it
    /// is closed here, and whatever it held is released.
    pub async fn try_lead(&mut self) -> Result<bool> {
        let Some(connection) = self.connection.as_mut() else {
            self.leading = true;
            return Ok(true);
        };
        let answer = if self.leading {
            let check = sqlx::query("SELECT 1").execute(&mut *connection);
            tokio::time::timeout(self.deadline, check)
                .await
                .map(|r| r.map(|_| true))
        } else {
            let sql = format!("SELECT pg_try_advisory_lock({LOCK})");
            let lock = sqlx::query_scalar::<_, bool>(&sql).fetch_one(&mut *connection);
            tokio::time::timeout(self.deadline, lock).await
        };
        match answer {
            Ok(Ok(leading)) => {
                self.leading = leading;
                Ok(leading)
            }
            Ok(Err(e)) => {
                self.close_now();
                Err(e.into())
            }
            Err(_) => {
                // The lock may be taken by now, unanswered: only closing the session is sure to free it.
                self.close_now();
                Err(StoreError::Timeout {
                    what: "leader election",
                    after: self.deadline,
                })
            }
        }
    }

    /// Gives the lock up (if held) and closes the session, within the deadline; another process
    /// can lead at its next try.
    pub async fn resign(mut self) {
        let Some(mut connection) = self.connection.take() else {
            return;
        };
        let leading = self.leading;
        let resign = async move {
            if leading {
                let sql = format!("SELECT pg_advisory_unlock({LOCK})");
                sqlx::query(&sql).execute(&mut connection).await?;
            }
            connection.close().await
        };
        // Past the deadline the connection is dropped with the future: its socket closes, and the
        // server ends the session, and the lock with it, when it sees that.
        let _ = tokio::time::timeout(self.deadline, resign).await;
    }

    fn close_now(&mut self) {
        // Dropping the connection closes its socket at once, without waiting for the server.
        self.connection = None;
        self.leading = false;
    }
}
