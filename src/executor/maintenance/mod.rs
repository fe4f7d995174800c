//! Small services, each with one job, beside the workers.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Verdict;
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

    // Heartbeat: renew the leases of live attempts; abort attempts an operator cancelled from any
    // process; stop attempts whose lease could not be renewed in time.
    let c = ctx.clone();
    services.push(every("heartbeat", lease / 3, stop.clone(), move || {
        let c = c.clone();
        async move {
            for id in renew_leases(&c).await?.cancel {
                c.handle.abort(&id);
            }
            Ok(())
        }
    }));

    // Fencer: an attempt whose lease is about to run out unrenewed (the database did not answer
    // the heartbeat) is stopped before it does, since another process's rescuer may then run the
    // execution. No database call: it must work while the database does not answer.
    let c = ctx.clone();
    services.push(every("fencer", lease / 10, stop.clone(), move || {
        let c = c.clone();
        async move {
            let fenced = c.handle.fence_expiring(lease / 5);
            if fenced > 0 {
                tracing::warn!(count = fenced, "stopping attempts whose lease could not be renewed");
            }
            Ok(())
        }
    }));

    // Rescuer: executions whose worker died (lease expired) go back to scheduled. This process's
    // own live leases are renewed first: after an outage longer than the lease, the rescuer would
    // otherwise take back attempts that are alive here, and they would run twice at once.
    let c = ctx.clone();
    services.push(every(
        "rescuer",
        (lease / 2).min(Duration::from_secs(5)),
        stop.clone(),
        move || {
            let c = c.clone();
            async move {
                renew_leases(&c).await?;
                let rescued = c.store.bounded("rescue", c.store.rescue()).await?;
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
                let n = c.store.bounded("discard", c.store.discard_overdue()).await?;
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
                let n = c.store.bounded("prune", c.store.prune(before, PRUNE_BATCH)).await?;
                if n > 0 {
                    tracing::info!(count = n, "pruned finished executions past the retention");
                }
                if n < PRUNE_BATCH as u64 {
                    break;
                }
            }
            // The audit log is kept as long as the executions it acted on.
            let n = c
                .store
                .bounded("prune", c.store.prune_console(before, now_ms()))
                .await?;
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
            async move { c.store.bounded("checkpoint", c.store.checkpoint()).await }
        },
    ));

    // Gauges: executions by state, backlog and its age.
    let c = ctx.clone();
    services.push(every("gauges", Duration::from_secs(5), stop.clone(), move || {
        let c = c.clone();
        async move {
            for (state, n) in c.store.bounded("gauges", c.store.count_by_state()).await? {
                metrics::gauge!("deferral_executions", "state" => state).set(n as f64);
            }
            let (due, oldest) = c.store.bounded("gauges", c.store.backlog()).await?;
            metrics::gauge!("deferral_backlog").set(due as f64);
            let age = oldest.map_or(0.0, |at| (now_ms() - at).max(0) as f64 / 1000.0);
            metrics::gauge!("deferral_backlog_oldest_age_seconds").set(age);
            Ok(())
        }
    }));

    // Watchdog: whether the executor makes progress, for /healthz, /metrics and the log.
    let c = ctx.clone();
    services.push(every("watchdog", WATCHDOG_EVERY, stop.clone(), move || {
        let c = c.clone();
        async move {
            watch(&c).await;
            Ok(())
        }
    }));

    if let Some(pool) = ctx.store.postgres_pool().cloned() {
        let check = ctx.store.deadline();
        services.push(tokio::spawn(listen_for_wakeups(pool, ctx.handle.clone(), check, stop)));
    }
    services
}

/// Renews the leases of this process's live attempts (see `ExecutorHandle::renewable_ids`).
async fn renew_leases(c: &Context) -> Result<crate::store::Renewed, crate::store::StoreError> {
    let lease = c.settings.lease;
    let ids = c.handle.renewable_ids(lease * COMPLETION_LEASES);
    if ids.is_empty() {
        return Ok(Default::default());
    }
    // The lease counts from before the statement was sent: the database's is at least as long.
    let asked = Instant::now();
    let renew = c.store.heartbeat(&c.owner, &ids, lease.as_millis() as i64);
    let renewed = c.store.bounded("heartbeat", renew).await?;
    c.handle.renewed(&renewed.ids, asked + lease);
    Ok(renewed)
}

/// Decides whether the executor is degraded; logs what it waits on while it is.
async fn watch(c: &Context) {
    let live = c.handle.liveness();
    let (still_for, pending, failing) = live.stalled_for();
    let after = stall_after(&c.settings);
    let limited: Vec<String> = c.settings.type_limits.iter().map(|(t, _)| t.clone()).collect();
    let claimable = async {
        c.store
            .bounded("watchdog", c.store.claimable_exists(&limited))
            .await
            .ok()
    };
    let verdict = super::liveness::judge(
        still_for,
        after,
        pending,
        c.permits.available_permits(),
        failing,
        claimable,
    )
    .await;
    metrics::gauge!("deferral_executor_degraded", "owner" => c.owner.clone()).set(if verdict == Verdict::Ok {
        0.0
    } else {
        1.0
    });
    let before = live.set_verdict(verdict.clone());
    match (&before, &verdict) {
        (_, Verdict::Degraded(reason)) => {
            // On the change, then every few seconds while it lasts.
            if before == Verdict::Ok || still_for.as_secs() % DEGRADED_LOG_EVERY == 0 {
                tracing::warn!(reason = %reason, waiting = %live.waits(), "executor degraded");
            }
        }
        (Verdict::Degraded(_), Verdict::Ok) => tracing::info!("executor making progress again"),
        (Verdict::Ok, Verdict::Ok) => {}
    }
}

/// How long without a claim or a completion, with work due, before the executor says degraded.
fn stall_after(s: &super::Settings) -> Duration {
    s.lease.max(s.poll_interval * 5)
}

/// The watchdog's period.
const WATCHDOG_EVERY: Duration = Duration::from_secs(1);
/// While degraded, the log says so again every this many seconds.
const DEGRADED_LOG_EVERY: u64 = 10;
/// How many leases' worth a finished attempt's completion may wait to be recorded while its lease
/// is still renewed; past that it is let go and the rescuer takes the execution back.
const COMPLETION_LEASES: u32 = 3;

/// PostgreSQL: executions committed by any process wake this one (LISTEN/NOTIFY);
/// polling remains the fallback while the listener reconnects. The connection is checked every
/// few seconds: one that went silent would otherwise wait for notifications forever.
async fn listen_for_wakeups(
    pool: sqlx::PgPool,
    handle: super::ExecutorHandle,
    check: Duration,
    stop: CancellationToken,
) {
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

/// How often the LISTEN connection is checked.
const LISTENER_CHECK: Duration = Duration::from_secs(5);
