//! Small services, each with one job, beside the workers.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::worker::Context;
use crate::store::now_ms;

const PRUNE_BATCH: i64 = 1000;

/// Runs `tick` every `every` until `stop`.
fn every<F, Fut>(name: &'static str, every: Duration, stop: CancellationToken, mut tick: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), crate::store::StoreError>> + Send,
{
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.cancelled() => return,
            }
            if let Err(e) = tick().await {
                tracing::warn!(service = name, error = %e, "maintenance failed; will try again");
            }
        }
    })
}

pub(super) fn spawn_all(ctx: Arc<Context>, stop: CancellationToken) -> Vec<JoinHandle<()>> {
    let lease = ctx.settings.lease;
    let mut services = Vec::new();

    // Heartbeat: renew our leases; abort attempts an operator cancelled from any process.
    let c = ctx.clone();
    services.push(every("heartbeat", lease / 3, stop.clone(), move || {
        let c = c.clone();
        async move {
            let running = c.handle.running_ids();
            for id in c.store.heartbeat(&c.owner, &running, lease.as_millis() as i64).await? {
                c.handle.abort(&id);
            }
            Ok(())
        }
    }));

    // Rescuer: executions whose worker died (lease expired) go back to scheduled.
    let c = ctx.clone();
    services.push(every(
        "rescuer",
        (lease / 2).min(Duration::from_secs(5)),
        stop.clone(),
        move || {
            let c = c.clone();
            async move {
                let rescued = c.store.rescue().await?;
                if !rescued.is_empty() {
                    tracing::warn!(count = rescued.len(), ids = ?rescued, "rescued executions whose lease expired");
                    c.handle.wake();
                }
                Ok(())
            }
        },
    ));

    // Discarder: scheduled executions past their deadline.
    let c = ctx.clone();
    services.push(every(
        "discarder",
        ctx.settings.poll_interval,
        stop.clone(),
        move || {
            let c = c.clone();
            async move {
                let n = c.store.discard_overdue().await?;
                if n > 0 {
                    tracing::info!(count = n, "discarded executions not started before their deadline");
                }
                Ok(())
            }
        },
    ));

    // Pruner: finished executions older than the retention, in small batches.
    let c = ctx.clone();
    let retention = ctx.settings.retention.as_millis() as i64;
    let prune_every = (ctx.settings.retention / 10).clamp(Duration::from_millis(200), Duration::from_secs(60));
    services.push(every("pruner", prune_every, stop.clone(), move || {
        let c = c.clone();
        async move {
            let before = now_ms() - retention;
            loop {
                let n = c.store.prune(before, PRUNE_BATCH).await?;
                if n > 0 {
                    tracing::info!(count = n, "pruned finished executions past the retention");
                }
                if n < PRUNE_BATCH as u64 {
                    break;
                }
            }
            // The audit log is kept as long as the executions it acted on.
            let n = c.store.prune_console(before, now_ms()).await?;
            if n > 0 {
                tracing::info!(count = n, "pruned audit log entries past the retention");
            }
            Ok(())
        }
    }));

    // Checkpointer (SQLite): copies the write-ahead log into the database in the background.
    // Left to the writer, each copy (every ~4 MB of log) stalls the commit that triggers it.
    let c = ctx.clone();
    services.push(every(
        "checkpointer",
        Duration::from_millis(500),
        stop.clone(),
        move || {
            let c = c.clone();
            async move { c.store.checkpoint().await }
        },
    ));

    // Gauges: executions by state, backlog and its age.
    let c = ctx.clone();
    services.push(every("gauges", Duration::from_secs(5), stop.clone(), move || {
        let c = c.clone();
        async move {
            for (state, n) in c.store.count_by_state().await? {
                metrics::gauge!("deferral_executions", "state" => state).set(n as f64);
            }
            let (due, oldest) = c.store.backlog().await?;
            metrics::gauge!("deferral_backlog").set(due as f64);
            let age = oldest.map_or(0.0, |at| (now_ms() - at).max(0) as f64 / 1000.0);
            metrics::gauge!("deferral_backlog_oldest_age_seconds").set(age);
            Ok(())
        }
    }));

    if let Some(pool) = ctx.store.postgres_pool().cloned() {
        services.push(tokio::spawn(listen_for_wakeups(pool, ctx.handle.clone(), stop)));
    }
    services
}

/// PostgreSQL: executions committed by any process wake this one (LISTEN/NOTIFY);
/// polling remains the fallback while the listener reconnects.
async fn listen_for_wakeups(pool: sqlx::PgPool, handle: super::ExecutorHandle, stop: CancellationToken) {
    loop {
        let listener = async {
            let mut l = sqlx::postgres::PgListener::connect_with(&pool).await?;
            l.listen(crate::store::WAKE_CHANNEL).await?;
            loop {
                l.recv().await?;
                handle.wake();
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
