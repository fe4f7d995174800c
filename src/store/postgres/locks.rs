//! Named session locks: an advisory lock held by a connection taken from the pool for the
//! purpose. The lock ends with that session, so a process that dies holding it holds nothing.
//! Every statement waits no longer than the store's deadline; a session that did not answer in
//! time is closed, never pooled (it may hold the lock).

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::pool::PoolConnection;

use super::super::driver::{HeldLock, LockName, SessionLock};
use super::super::{Result, StoreError};

/// The lock's two keys: the first names it, the second is 0, so it can never equal the
/// leader's (`hashtext('deferral-leader'), 0`) or the executor's per-object locks (`hashtext('deferral-object'), hashtext(object_id)`).
fn key(name: LockName) -> &'static str {
    match name {
        LockName::AlertCompose => "hashtext('deferral-alert-compose'), 0",
    }
}

pub(super) async fn try_lock(pool: &PgPool, name: LockName, deadline: Duration) -> Result<Option<SessionLock>> {
    let timeout = |what| StoreError::Timeout { what, after: deadline };
    let mut connection = tokio::time::timeout(deadline, pool.acquire())
        .await
        .map_err(|_| timeout("session lock"))??;
    let sql = format!("SELECT pg_try_advisory_lock({})", key(name));
    let (locked,): (bool,) =
        match tokio::time::timeout(deadline, sqlx::query_as(&sql).fetch_one(&mut *connection)).await {
            Ok(answer) => answer?,
            Err(_) => {
                // The lock may be taken by now: the session ends rather than return to the pool.
                drop(connection.detach());
                return Err(timeout("session lock"));
            }
        };
    Ok(locked.then(|| SessionLock {
        inner: Some(Box::new(Held {
            connection: Some(connection),
            name,
            deadline,
        })),
    }))
}

struct Held {
    connection: Option<PoolConnection<sqlx::Postgres>>,
    name: LockName,
    deadline: Duration,
}

#[async_trait]
impl HeldLock for Held {
    async fn alive(&mut self) -> bool {
        let Some(connection) = self.connection.as_mut() else {
            return false;
        };
        let ping = sqlx::query("SELECT 1").execute(&mut **connection);
        let answered = matches!(tokio::time::timeout(self.deadline, ping).await, Ok(Ok(_)));
        if !answered {
            // Its session may be gone, and the lock with it: never trust it again.
            if let Some(connection) = self.connection.take() {
                drop(connection.detach());
            }
        }
        answered
    }

    async fn release(mut self: Box<Self>) {
        if let Some(mut connection) = self.connection.take() {
            let sql = format!("SELECT pg_advisory_unlock({})", key(self.name));
            let unlock = sqlx::query(&sql).execute(&mut *connection);
            if !matches!(tokio::time::timeout(self.deadline, unlock).await, Ok(Ok(_))) {
                // Not known to be unlocked: the session must end rather than return to the pool.
                drop(connection.detach());
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Dropped without `release` (the task was cancelled): closing the session unlocks.
        if let Some(connection) = self.connection.take() {
            drop(connection.detach());
        }
    }
}
