//! Executions committed by any process wake the others (LISTEN/NOTIFY); polling remains the
//! fallback while the listener reconnects. The connection is checked every few seconds: one
//! that went silent would otherwise wait for notifications forever.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::super::driver::Wake;
use super::WAKE_CHANNEL;

/// How often the LISTEN connection is checked.
const LISTENER_CHECK: Duration = Duration::from_secs(5);

pub(super) async fn listen(pool: PgPool, wake: Wake, check: Duration, stop: CancellationToken) {
    loop {
        let listener = async {
            let silent = |_| sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"));
            let mut l = tokio::time::timeout(check, PgListener::connect_with(&pool))
                .await
                .map_err(silent)??;
            tokio::time::timeout(check, l.listen(WAKE_CHANNEL))
                .await
                .map_err(silent)??;
            let mut every = tokio::time::interval(LISTENER_CHECK);
            every.tick().await;
            loop {
                tokio::select! {
                    n = l.recv() => { n?; wake(); }
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
