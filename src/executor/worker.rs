//! Claiming, running and completing attempts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{ErrorKind, ExecutorHandle, Job, JobError, RunningAttempt, Settings, Stop};
use crate::store::{Claimed, Completion, Finish, Store, now_ms};

/// Most executions claimed in one query.
const CLAIM_BATCH: usize = 256;
/// Longest a busy dispatcher waits for more workers to free up before claiming.
const CLAIM_GATHER: Duration = Duration::from_millis(2);
/// Most completions written in one transaction.
const COMPLETE_BATCH: usize = 1024;

pub(super) struct Context {
    pub store: Store,
    pub owner: String,
    pub settings: Settings,
    pub job: Arc<dyn Job>,
    pub handle: ExecutorHandle,
    /// One permit per attempt that may run at once in this process.
    pub permits: Arc<Semaphore>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Claims due executions while there are free workers; sleeps until woken, the next
/// scheduled time or the poll interval otherwise. Returns when `shutdown` is cancelled.
pub(super) async fn dispatch(ctx: Arc<Context>, done: mpsc::UnboundedSender<Completion>, shutdown: CancellationToken) {
    let lease = millis(ctx.settings.lease);
    let limited: Vec<String> = ctx.settings.type_limits.iter().map(|(t, _)| t.clone()).collect();
    let mut failures = 0u32;
    let live = ctx.handle.liveness.clone();
    loop {
        live.dispatcher_waits("a free worker");
        let first = tokio::select! {
            p = ctx.permits.clone().acquire_owned() => p.expect("semaphore stays open"),
            _ = shutdown.cancelled() => return,
        };
        let mut permits = vec![first];
        take_free(&ctx.permits, &mut permits);
        // Busy: rather than claiming for one freed worker at a time, let a batch's worth free up
        // (briefly) so each claim query serves many workers.
        let worth = (ctx.settings.workers as usize / 4).clamp(1, CLAIM_BATCH);
        let gather_until = tokio::time::Instant::now() + CLAIM_GATHER;
        while permits.len() < worth && tokio::time::Instant::now() < gather_until {
            tokio::time::sleep(Duration::from_micros(200)).await;
            take_free(&ctx.permits, &mut permits);
        }
        let mut claimed = Vec::new();
        let mut result = Ok(());
        live.dispatcher_waits("the database (claiming executions)");
        // The leases claimed below end `lease` after the claim's clock reading, taken after this.
        let lease_until = Instant::now() + ctx.settings.lease;
        for (ty, limit) in &ctx.settings.type_limits {
            // Never more than the free workers: a claimed execution without one would hold its lease unrun.
            let room = permits.len().saturating_sub(claimed.len());
            if room == 0 || result.is_err() {
                break;
            }
            let claim = ctx
                .store
                .claim_limited(&ctx.owner, ty, *limit as i64, lease, room as i64);
            match ctx.store.bounded("claim", claim).await {
                Ok(mut rows) => claimed.append(&mut rows),
                Err(e) => result = Err(e),
            }
        }
        let room = permits.len().saturating_sub(claimed.len());
        if room > 0 && result.is_ok() {
            let claim = ctx.store.claim(&ctx.owner, room as i64, lease, &limited);
            match ctx.store.bounded("claim", claim).await {
                Ok(mut rows) => claimed.append(&mut rows),
                Err(e) => result = Err(e),
            }
        }
        // Run what was claimed even if a later claim failed: those executions are ours now.
        let got = claimed.len();
        if result.is_ok() || got > 0 {
            live.claimed(got);
        }
        for (execution, permit) in claimed.into_iter().zip(permits.drain(..)) {
            tokio::spawn(run_attempt(ctx.clone(), execution, lease_until, permit, done.clone()));
        }
        drop(permits);
        if let Err(e) = result {
            // The database is away: back off, keep the process alive, try again.
            failures += 1;
            let wait = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
            tracing::warn!(error = %e, retry_in = ?wait, "cannot claim executions");
            live.claim_failed();
            live.dispatcher_waits("a back-off after a failed claim");
            tokio::select! { _ = tokio::time::sleep(wait) => continue, _ = shutdown.cancelled() => return }
        }
        failures = 0;
        if got > 0 {
            continue;
        }
        live.dispatcher_waits("the database (next due time)");
        let sleep = match ctx.store.bounded("next due time", ctx.store.next_due_at()).await {
            Ok(Some(at)) => Duration::from_millis((at - now_ms()).max(1) as u64).min(ctx.settings.poll_interval),
            _ => ctx.settings.poll_interval,
        };
        live.dispatcher_waits("new work (idle)");
        tokio::select! {
            _ = ctx.handle.wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Takes every free permit, up to a claim batch.
fn take_free(semaphore: &Arc<Semaphore>, permits: &mut Vec<OwnedSemaphorePermit>) {
    while permits.len() < CLAIM_BATCH {
        match semaphore.clone().try_acquire_owned() {
            Ok(p) => permits.push(p),
            Err(_) => break,
        }
    }
}

async fn run_attempt(
    ctx: Arc<Context>,
    claimed: Claimed,
    lease_until: Instant,
    permit: OwnedSemaphorePermit,
    done: mpsc::UnboundedSender<Completion>,
) {
    let row = &claimed.row;
    // Instrumented rather than entered: an entered span stays current across `.await`, and the
    // other attempts this thread polls meanwhile would log inside it.
    let span = tracing::info_span!("attempt", execution_id = %row.id, event_id = %row.event_id, attempt = row.attempts);
    run_attempt_in_span(ctx, claimed, lease_until, permit, done)
        .instrument(span)
        .await
}

async fn run_attempt_in_span(
    ctx: Arc<Context>,
    claimed: Claimed,
    lease_until: Instant,
    permit: OwnedSemaphorePermit,
    done: mpsc::UnboundedSender<Completion>,
) {
    let row = &claimed.row;
    let stop = CancellationToken::new();
    let reason = Arc::new(Mutex::new(None));
    ctx.handle.running.attempts.lock().expect("running registry").insert(
        row.id.clone(),
        RunningAttempt {
            stop: stop.clone(),
            reason: reason.clone(),
            attempt: row.attempts,
            lease_until,
            finished: None,
        },
    );

    let started_at = row.started_at.unwrap_or_else(now_ms);
    let clock = Instant::now();
    let job = ctx.job.clone();
    let work = std::panic::AssertUnwindSafe(job.run(&claimed)).catch_unwind();
    let outcome = tokio::select! {
        r = tokio::time::timeout(ctx.settings.max_duration, work) => match r {
            Ok(Ok(result)) => Outcome::Done(result),
            Ok(Err(_)) => Outcome::Done(Err(JobError::retryable("the handler panicked"))),
            Err(_) => Outcome::Timeout,
        },
        _ = stop.cancelled() => match *reason.lock().expect("stop reason") {
            Some(Stop::Released) => Outcome::Released,
            Some(Stop::LeaseLost) => Outcome::LeaseLost,
            Some(Stop::Aborted) | None => Outcome::Aborted,
        },
    };
    let elapsed = clock.elapsed();

    if matches!(outcome, Outcome::LeaseLost) {
        // Nothing to record: the lease is (or is about to be) gone, so the rescuer records the
        // attempt as lost and the execution runs again, here or in another process.
        tracing::warn!(
            elapsed_ms = elapsed.as_millis() as u64,
            "attempt stopped: its lease could not be renewed in time; the rescuer will run the execution again"
        );
        metrics::counter!("deferral_attempts_total", "outcome" => "lease_lost", "error_kind" => "lease_lost")
            .increment(1);
        let mut running = ctx.handle.running.attempts.lock().expect("running registry");
        if running.get(&row.id).is_some_and(|a| a.attempt == row.attempts) {
            running.remove(&row.id);
        }
        drop(permit);
        return;
    }

    let finish = decide(
        &ctx.settings,
        row.attempts,
        row.max_attempts,
        outcome,
        &mut rand::thread_rng(),
    );
    record_metrics(&finish, elapsed);
    match &finish {
        Finish::Succeeded { .. } => tracing::info!(elapsed_ms = elapsed.as_millis() as u64, "attempt succeeded"),
        Finish::Retry { message, at, .. } => {
            tracing::warn!(error = %message, retry_in_ms = at - now_ms(), "attempt failed; will retry")
        }
        Finish::Failed { message, .. } => tracing::error!(error = %message, "attempt failed; execution failed"),
        Finish::Aborted => tracing::info!("attempt aborted by an operator"),
        Finish::Released => tracing::info!("attempt released at shutdown"),
        Finish::Postponed { at } => tracing::debug!(run_in_ms = at - now_ms(), "postponed, not counted"),
    }
    if let Some(a) = ctx
        .handle
        .running
        .attempts
        .lock()
        .expect("running registry")
        .get_mut(&row.id)
    {
        a.finished = Some(Instant::now());
    }
    let _ = done.send(Completion {
        execution_id: row.id.clone(),
        attempt: row.attempts,
        started_at,
        finished_at: now_ms(),
        duration_us: elapsed.as_micros() as i64,
        finish,
    });
    drop(permit);
}

enum Outcome {
    Done(Result<super::JobOutput, JobError>),
    Timeout,
    Aborted,
    Released,
    /// Stopped because its lease could not be renewed: nothing is recorded.
    LeaseLost,
}

/// What an attempt's end means for the execution, given the retry policy: attempt number
/// `attempt` of the execution's `max_attempts` (its row's, set at ingest: the one the rescuer
/// reads too, so a process whose `DEFERRAL_MAX_ATTEMPTS` differs decides alike).
fn decide(settings: &Settings, attempt: i64, max_attempts: i64, outcome: Outcome, rng: &mut impl rand::Rng) -> Finish {
    let error = match outcome {
        Outcome::Done(Ok(out)) => {
            return Finish::Succeeded {
                result: out.result,
                source: out.source,
            };
        }
        Outcome::Aborted => return Finish::Aborted,
        // Handled before deciding (nothing is recorded); released if it ever got here.
        Outcome::Released | Outcome::LeaseLost => return Finish::Released,
        Outcome::Timeout => (
            "timeout",
            JobError::retryable(format!(
                "the attempt took longer than {} and was cancelled",
                humantime::format_duration(settings.max_duration)
            )),
        ),
        Outcome::Done(Err(e)) if e.kind == ErrorKind::Permanent => {
            return Finish::Failed {
                kind: "permanent",
                message: e.message,
            };
        }
        // Never counted, never the last try: the execution only waits for its turn.
        Outcome::Done(Err(e)) if e.kind == ErrorKind::Postponed => {
            let wait = e.retry_after.unwrap_or(Duration::from_secs(1));
            return Finish::Postponed {
                at: now_ms() + millis(wait),
            };
        }
        Outcome::Done(Err(e)) => ("retryable", e),
    };
    let (kind, e) = error;
    if attempt >= max_attempts {
        return Finish::Failed {
            kind,
            message: format!("{} (attempt {attempt} of {max_attempts}, no tries left)", e.message),
        };
    }
    let wait = e
        .retry_after
        .unwrap_or_else(|| settings.retry.delay(attempt as u32, rng));
    Finish::Retry {
        at: now_ms() + millis(wait),
        kind,
        message: e.message,
    }
}

fn record_metrics(finish: &Finish, elapsed: Duration) {
    let (outcome, kind) = match finish {
        Finish::Succeeded { .. } => ("succeeded", "none"),
        Finish::Retry { kind, .. } => ("retry", *kind),
        Finish::Failed { kind, .. } => ("failed", *kind),
        Finish::Aborted => ("aborted", "aborted"),
        Finish::Released => ("released", "none"),
        Finish::Postponed { .. } => ("postponed", "none"),
    };
    metrics::counter!("deferral_attempts_total", "outcome" => outcome, "error_kind" => kind).increment(1);
    metrics::histogram!("deferral_attempt_duration_seconds").record(elapsed.as_secs_f64());
}

/// Writes completions in batches: whatever has arrived, in one transaction.
pub(super) async fn complete_batches(ctx: Arc<Context>, mut rx: mpsc::UnboundedReceiver<Completion>) {
    let mut batch = Vec::with_capacity(COMPLETE_BATCH);
    let live = ctx.handle.liveness.clone();
    while rx.recv_many(&mut batch, COMPLETE_BATCH).await > 0 {
        let mut failures = 0u32;
        loop {
            live.set_pending(batch.len() + rx.len());
            live.completer_waits("the database (recording completions)");
            match ctx
                .store
                .bounded("completion", ctx.store.complete(&ctx.owner, &batch))
                .await
            {
                Ok(_) => break,
                // Refused rather than unreachable: one completion may be at fault, and retrying
                // the batch would stop every completion behind it for good.
                Err(e) if !e.is_unavailable() => {
                    tracing::warn!(error = %e, pending = batch.len(), "a batch of completions was refused; recording them one by one");
                    for c in &batch {
                        complete_alone(&ctx, c).await;
                    }
                    break;
                }
                // Keep the batch: the leases protect the executions meanwhile, for a bounded
                // time (see `ExecutorHandle::renewable_ids`); past it the rescuer runs them again
                // (at-least-once), and recording the completion later changes nothing.
                Err(e) => {
                    live.completer_waits("a back-off after a failed completion");
                    back_off(&mut failures, &e, batch.len()).await
                }
            }
        }
        live.completed();
        // Recorded (or given up): no lease left to renew (the heartbeat renews until here, so a
        // slow completer does not let finished executions expire and run again).
        {
            let mut running = ctx.handle.running.attempts.lock().expect("running registry");
            for c in &batch {
                if running.get(&c.execution_id).is_some_and(|a| a.attempt == c.attempt) {
                    running.remove(&c.execution_id);
                }
            }
        }
        batch.clear();
        live.set_pending(rx.len());
        live.completer_waits("completions to record");
        // Finished executions may unblock later ones for the same object.
        ctx.handle.wake();
    }
}

/// Records one completion, waiting out an unreachable database. One the database refuses is
/// given up: its lease then expires, and the rescuer records the attempt as lost and schedules
/// the execution again (or fails it, out of attempts).
async fn complete_alone(ctx: &Context, c: &Completion) {
    let mut failures = 0u32;
    loop {
        let one = ctx.store.complete(&ctx.owner, std::slice::from_ref(c));
        match ctx.store.bounded("completion", one).await {
            Ok(_) => return,
            Err(e) if !e.is_unavailable() => {
                tracing::error!(error = %e, execution_id = %c.execution_id, "completion refused; the attempt will count as lost");
                return;
            }
            Err(e) => back_off(&mut failures, &e, 1).await,
        }
    }
}

async fn back_off(failures: &mut u32, error: &crate::store::StoreError, pending: usize) {
    *failures += 1;
    let wait = Duration::from_millis(100 * 2u64.pow((*failures).min(6)));
    tracing::warn!(error = %error, retry_in = ?wait, pending, "cannot record completions");
    tokio::time::sleep(wait).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::RetryPolicy;
    use rand::SeedableRng;

    /// The process setting for max attempts is `process_max`; the executions' own differ.
    fn settings(process_max: u32) -> Settings {
        Settings {
            workers: 1,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            max_duration: Duration::from_secs(300),
            retention: Duration::from_secs(86_400),
            shutdown_grace: Duration::from_secs(1),
            retry: RetryPolicy {
                max_attempts: process_max,
                initial_interval: Duration::from_secs(30),
                multiplier: 1.5,
                randomization_factor: 0.0,
                max_interval: Duration::from_secs(600),
            },
            type_limits: vec![],
        }
    }

    #[test]
    fn retryable_errors_back_off_until_attempts_run_out() {
        let s = settings(8);
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let before = now_ms();
        match decide(&s, 2, 3, Outcome::Done(Err(JobError::retryable("503"))), &mut rng) {
            Finish::Retry { at, kind, .. } => {
                assert_eq!(kind, "retryable");
                let wait = at - before;
                assert!((45_000..46_000).contains(&wait), "{wait}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decide(&s, 3, 3, Outcome::Done(Err(JobError::retryable("503"))), &mut rng),
            Finish::Failed { kind: "retryable", .. }
        ));
    }

    #[test]
    fn permanent_errors_fail_at_once_and_timeouts_retry() {
        let s = settings(8);
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        assert!(matches!(
            decide(&s, 1, 8, Outcome::Done(Err(JobError::permanent("404"))), &mut rng),
            Finish::Failed { kind: "permanent", .. }
        ));
        assert!(matches!(
            decide(&s, 1, 8, Outcome::Timeout, &mut rng),
            Finish::Retry { kind: "timeout", .. }
        ));
    }

    #[test]
    fn postponed_attempts_wait_without_counting_even_on_the_last_try() {
        let s = settings(3);
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let e = JobError::postponed("no Stripe budget", Duration::from_secs(4));
        let before = now_ms();
        match decide(&s, 3, 3, Outcome::Done(Err(e)), &mut rng) {
            Finish::Postponed { at } => assert!((4_000..4_500).contains(&(at - before))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_overrides_the_back_off() {
        let s = settings(8);
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let e = JobError::retryable("429").retry_after(Duration::from_secs(2));
        let before = now_ms();
        match decide(&s, 1, 8, Outcome::Done(Err(e)), &mut rng) {
            Finish::Retry { at, .. } => assert!((2_000..2_500).contains(&(at - before))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_executions_own_max_attempts_decides_not_the_process_setting() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let retryable = || Outcome::Done(Err(JobError::retryable("503")));
        // The row allows 2; this process would allow 8.
        match decide(&settings(8), 2, 2, retryable(), &mut rng) {
            Finish::Failed { kind, message } => {
                assert_eq!(kind, "retryable");
                assert!(message.ends_with("(attempt 2 of 2, no tries left)"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // The row allows 3; this process would allow 1.
        assert!(matches!(
            decide(&settings(1), 1, 3, retryable(), &mut rng),
            Finish::Retry { kind: "retryable", .. }
        ));
    }
}
