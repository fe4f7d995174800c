//! The leader election's session: one connection of its own (not pooled) that tries to take,
//! then keeps, a session-level advisory lock. The lock ends with its session, so a leader that
//! dies, or whose connection drops, leads no more and another process takes the lock at its next
//! try. Every statement waits no longer than the store's deadline; a session that failed or did
//! not answer in time is closed (which releases the lock) and must not be used again.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Connection, PgConnection, PgPool};

use super::super::driver::Campaign;
use super::super::{Result, StoreError};

/// The leader lock. Two keys, and a first key of its own: it never equals the per-object locks
/// (`hashtext('deferral-object'), …`), the other named locks (`locks.rs`) or the single-key
/// locks (another key space).
const LOCK: &str = "hashtext('deferral-leader'), 0";

/// Opens a session with the readers' settings (deadlines, this process's name), outside the
/// pools, with TCP keepalives every `check_every`, so the server itself notices a leader whose
/// host vanished and ends its session (releasing the lock) within a few of them.
pub(super) async fn session(pool: &PgPool, check_every: Duration, deadline: Duration) -> Result<Box<dyn Campaign>> {
    let idle = check_every.as_secs().max(1);
    let options = (*pool.connect_options()).clone().options([
        ("tcp_keepalives_idle", idle),
        ("tcp_keepalives_interval", 1),
        ("tcp_keepalives_count", 3),
    ]);
    let connection = tokio::time::timeout(deadline, PgConnection::connect_with(&options))
        .await
        .map_err(|_| StoreError::Timeout {
            what: "leader session",
            after: deadline,
        })??;
    Ok(Box::new(Session {
        connection: Some(connection),
        leading: false,
        deadline,
    }))
}

struct Session {
    connection: Option<PgConnection>,
    leading: bool,
    deadline: Duration,
}

impl Session {
    fn close_now(&mut self) {
        // Dropping the connection closes its socket at once, without waiting for the server.
        self.connection = None;
        self.leading = false;
    }
}

#[async_trait]
impl Campaign for Session {
    /// Not leading yet: tries to take the lock (`pg_try_advisory_lock`, never waiting for it).
    /// Leading: checks that the session (and so the lock) is still alive (`SELECT 1`).
    async fn try_lead(&mut self) -> Result<bool> {
        let Some(connection) = self.connection.as_mut() else {
            return Err(StoreError::Db(sqlx::Error::PoolClosed));
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

    /// Gives the lock up (if held) and closes the session, within the deadline. Past it the
    /// connection is dropped: its socket closes, and the server ends the session, and the lock
    /// with it, when it sees that.
    async fn resign(mut self: Box<Self>) {
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
        let _ = tokio::time::timeout(self.deadline, resign).await;
    }
}
