//! Whether the executor is making progress, and what it is waiting on.
//!
//! The dispatcher and the completer note each success and what they wait on next; the watchdog
//! (a maintenance service) turns that into a verdict `/healthz` reports, the gauges `/metrics`
//! exports, and log lines that name the wait when there is no progress.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the executor says about itself on `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Work is due and nothing has moved for a while; the reason is ours, never a database message.
    Degraded(String),
}

/// What one loop (the dispatcher or the completer) is waiting on, and since when.
#[derive(Debug, Clone, Copy)]
struct Wait {
    on: &'static str,
    since: Instant,
}

struct Progress {
    /// The last claim that returned executions: progress, for the verdict.
    last_claim: Option<Instant>,
    /// The last claim the database answered, with or without executions: for `/metrics`, where
    /// an idle process that keeps claiming nothing is well, and one whose claims fail is not.
    last_claim_answer: Option<Instant>,
    last_claim_failure: Option<Instant>,
    last_completion: Option<Instant>,
    dispatcher: Wait,
    completer: Wait,
    /// Completions handed to the completer and not yet recorded.
    pending: usize,
    verdict: Verdict,
}

pub struct Liveness {
    started: Instant,
    progress: Mutex<Progress>,
}

impl Default for Liveness {
    fn default() -> Self {
        let now = Instant::now();
        let idle = |on| Wait { on, since: now };
        Liveness {
            started: now,
            progress: Mutex::new(Progress {
                last_claim: None,
                last_claim_answer: None,
                last_claim_failure: None,
                last_completion: None,
                dispatcher: idle("starting"),
                completer: idle("completions to record"),
                pending: 0,
                verdict: Verdict::Ok,
            }),
        }
    }
}

impl Liveness {
    fn with<T>(&self, f: impl FnOnce(&mut Progress) -> T) -> T {
        f(&mut self.progress.lock().expect("liveness"))
    }

    /// The database answered a claim, with `got` executions.
    pub(super) fn claimed(&self, got: usize) {
        let now = Instant::now();
        self.with(|p| {
            p.last_claim_answer = Some(now);
            if got > 0 {
                p.last_claim = Some(now);
            }
        });
    }

    /// A claim failed (the database did not answer, or refused).
    pub(super) fn claim_failed(&self) {
        self.with(|p| p.last_claim_failure = Some(Instant::now()));
    }

    /// A batch of completions was recorded.
    pub(super) fn completed(&self) {
        self.with(|p| p.last_completion = Some(Instant::now()));
    }

    /// Completions handed to the completer and not yet recorded.
    pub(super) fn set_pending(&self, pending: usize) {
        self.with(|p| p.pending = pending);
    }

    /// The dispatcher now waits on `on`.
    pub(super) fn dispatcher_waits(&self, on: &'static str) {
        self.with(|p| {
            if p.dispatcher.on != on {
                p.dispatcher = Wait {
                    on,
                    since: Instant::now(),
                };
            }
        });
    }

    /// The completer now waits on `on`.
    pub(super) fn completer_waits(&self, on: &'static str) {
        self.with(|p| {
            if p.completer.on != on {
                p.completer = Wait {
                    on,
                    since: Instant::now(),
                };
            }
        });
    }

    /// Since the database last answered a claim, whether or not it found executions (since start
    /// if it never did): small while the dispatcher can claim, growing while it cannot.
    pub fn claim_age(&self) -> Duration {
        self.with(|p| p.last_claim_answer.unwrap_or(self.started).elapsed())
    }

    /// Since the last batch of completions was recorded (since start if none was).
    pub fn completion_age(&self) -> Duration {
        self.with(|p| p.last_completion.unwrap_or(self.started).elapsed())
    }

    pub fn verdict(&self) -> Verdict {
        self.with(|p| p.verdict.clone())
    }

    /// What the dispatcher and the completer wait on, and for how long, for the log.
    pub fn waits(&self) -> String {
        self.with(|p| {
            format!(
                "the dispatcher waits on {} ({:.1}s), the completer on {} ({:.1}s, {} completions pending)",
                p.dispatcher.on,
                p.dispatcher.since.elapsed().as_secs_f64(),
                p.completer.on,
                p.completer.since.elapsed().as_secs_f64(),
                p.pending
            )
        })
    }

    /// How long since anything moved, how many completions wait to be recorded, and whether
    /// the latest claim failed.
    pub(super) fn stalled_for(&self) -> (Duration, usize, bool) {
        self.with(|p| {
            let last = [p.last_claim, p.last_completion]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(self.started);
            let failing = p
                .last_claim_failure
                .is_some_and(|f| p.last_claim_answer.is_none_or(|c| f > c));
            (last.elapsed(), p.pending, failing)
        })
    }

    /// Stores the watchdog's verdict; returns the previous one.
    pub(super) fn set_verdict(&self, verdict: Verdict) -> Verdict {
        self.with(|p| std::mem::replace(&mut p.verdict, verdict))
    }
}

/// The verdict from what the watchdog saw: `still_for` without a claim or a completion,
/// `pending` completions, `free_workers`, whether the latest claim `failed`. `claimable` (whether executions are due that could be
/// claimed now) is asked of the database only when it decides: `None` when it did not answer.
pub(super) async fn judge<F>(
    still_for: Duration,
    after: Duration,
    pending: usize,
    free_workers: usize,
    failed: bool,
    claimable: F,
) -> Verdict
where
    F: std::future::Future<Output = Option<bool>>,
{
    if still_for < after {
        return Verdict::Ok;
    }
    let secs = still_for.as_secs();
    if pending > 0 {
        return Verdict::Degraded(format!(
            "{pending} finished attempts wait to be recorded; no completion recorded for {secs}s"
        ));
    }
    if failed && free_workers > 0 {
        return Verdict::Degraded(format!(
            "claims fail (the database does not answer or refuses); nothing claimed or completed for {secs}s"
        ));
    }
    if free_workers == 0 {
        // Every worker runs an attempt (each bounded by DEFERRAL_MAX_DURATION): busy, not stuck.
        return Verdict::Ok;
    }
    match claimable.await {
        Some(false) => Verdict::Ok,
        Some(true) => Verdict::Degraded(format!(
            "executions are due and workers are free, but none was claimed for {secs}s"
        )),
        None => Verdict::Degraded(format!(
            "the database does not answer the executor; nothing claimed or completed for {secs}s"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_secs(10);

    fn degraded(v: &Verdict) -> bool {
        matches!(v, Verdict::Degraded(_))
    }

    #[tokio::test]
    async fn recent_progress_no_due_work_or_busy_workers_are_ok() {
        let recent = judge(Duration::from_secs(3), AFTER, 5, 2, false, async {
            panic!("not asked")
        })
        .await;
        assert_eq!(recent, Verdict::Ok);
        let nothing_due = judge(Duration::from_secs(30), AFTER, 0, 2, false, async { Some(false) }).await;
        assert_eq!(nothing_due, Verdict::Ok);
        let busy = judge(Duration::from_secs(30), AFTER, 0, 0, false, async {
            panic!("not asked")
        })
        .await;
        assert_eq!(busy, Verdict::Ok, "every worker runs an attempt");
    }

    #[tokio::test]
    async fn due_work_or_pending_completions_without_progress_are_degraded() {
        assert!(degraded(
            &judge(Duration::from_secs(30), AFTER, 0, 2, false, async { Some(true) }).await
        ));
        assert!(degraded(
            &judge(Duration::from_secs(30), AFTER, 0, 2, true, async {
                panic!("not asked")
            })
            .await
        ));
        let pending = judge(Duration::from_secs(30), AFTER, 7, 0, false, async { None }).await;
        assert_eq!(
            pending,
            Verdict::Degraded("7 finished attempts wait to be recorded; no completion recorded for 30s".into())
        );
    }
}
