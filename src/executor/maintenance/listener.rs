//! Listener (PostgreSQL): executions committed by any process wake this one (LISTEN/NOTIFY);
//! polling remains the fallback while the listener reconnects. The connection is checked every
//! few seconds: one that went silent would otherwise wait for notifications forever.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::executor::ExecutorHandle;
use crate::store::Store;

/// How often the LISTEN connection is checked.
const LISTENER_CHECK: Duration = Duration::from_secs(5);

/// Starts listening when the store is PostgreSQL's (SQLite: one process, nothing to hear).
pub(super) fn spawn(store: &Store, handle: ExecutorHandle, stop: CancellationToken) -> Option<JoinHandle<()>> {
    let pool = store.postgres_pool().cloned()?;
    Some(tokio::spawn(listen_for_wakeups(pool, handle, store.deadline(), stop)))
}

async fn listen_for_wakeups(pool: sqlx::PgPool, handle: ExecutorHandle, check: Duration, stop: CancellationToken) {
    loop {
        let listener = async {
            let silent = |_| sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"));
            let mut l = tokio::time::timeout(check, sqlx::postgres::PgListener::connect_with(&pool))
                .await
                .map_err(silent)??;
            tokio::time::timeout(check, l.listen(crate::store::WAKE_CHANNEL))
                .await
                .map_err(silent)??;
            let mut every = tokio::time::interval(LISTENER_CHECK);
            every.tick().await;
            loop {
                tokio::select! {
                    n = l.recv() => { n?; handle.wake(); }
                    _ = every.tick() => {
                        let ping = sqlx::query("SELECT 1").execute(&mut l);
                        tokio::time::timeout(check, ping).await.map_err(silent)??;
                    }
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            r = listener => if let Err(e) = r { tracing::warn!(error = %e, "LISTEN connection lost; polling until it is back") },
            _ = stop.cancelled() => return,
        }
        tokio::select! { _ = tokio::time::sleep(Duration::from_secs(1)) => {}, _ = stop.cancelled() => return }
    }
}
