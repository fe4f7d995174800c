//! The durable executor: claims due executions under a lease, runs the job with a timeout,
//! and records each attempt; small maintenance services (heartbeat, rescuer, discarder,
//! pruner, gauges…; `maintenance/`) each do one thing beside it, those needed once per database
//! in the elected leader only.

pub mod alerter;
mod job;
mod liveness;
pub mod maintenance;
mod retry;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use job::{ErrorKind, Job, JobError, JobOutput, Noop};
pub use liveness::{Liveness, Verdict};
pub use retry::RetryPolicy;

use crate::config::Config;
use crate::store::{Completion, Store};

/// The in-process attempt registry: how to abort or release a running attempt.
#[derive(Default)]
struct Running {
    attempts: Mutex<HashMap<String, RunningAttempt>>,
}

/// Why a running attempt was stopped before it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// An operator cancelled the execution.
    Aborted,
    /// Shutdown: the execution is released (back to scheduled, the attempt not counted).
    Released,
    /// Its lease could not be renewed in time: another process may run the execution now.
    LeaseLost,
}

struct RunningAttempt {
    stop: CancellationToken,
    /// Why `stop` was cancelled.
    reason: Arc<Mutex<Option<Stop>>>,
    /// The attempt number: the entry stays until this attempt's completion is recorded.
    attempt: i64,
    /// The lease is known to run at least until this (the claim, then each renewal).
    lease_until: Instant,
    /// When the attempt ended and its completion went to the completer.
    finished: Option<Instant>,
}

impl RunningAttempt {
    fn stop(&self, why: Stop) {
        self.reason.lock().expect("stop reason").get_or_insert(why);
        self.stop.cancel();
    }
}

/// Lets other parts of the process wake idle workers and abort local attempts.
#[derive(Clone, Default)]
pub struct ExecutorHandle {
    wake: Arc<Notify>,
    running: Arc<Running>,
    liveness: Arc<Liveness>,
    owner: Arc<OnceLock<String>>,
}

impl ExecutorHandle {
    /// New due executions were committed: look now instead of at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Aborts an attempt running in this process (an operator cancelled it).
    /// Attempts in other processes see the request at their next heartbeat.
    pub fn abort(&self, execution_id: &str) -> bool {
        let attempts = self.running.attempts.lock().expect("running registry");
        match attempts.get(execution_id) {
            Some(a) => {
                a.stop(Stop::Aborted);
                true
            }
            None => false,
        }
    }

    /// Progress and waits, for `/healthz`, `/metrics` and the log.
    pub fn liveness(&self) -> &Liveness {
        &self.liveness
    }

    /// This process's lease owner (empty before the executor started).
    pub fn owner(&self) -> &str {
        self.owner.get().map_or("", String::as_str)
    }

    /// The leases the heartbeat renews: attempts running in this process, and finished ones whose
    /// completion has been waiting to be recorded for less than `completion_bound`. Past that the
    /// lease is let go: the rescuer takes the execution back (the completion, if it is recorded
    /// later, then changes nothing).
    fn renewable_ids(&self, completion_bound: Duration) -> Vec<String> {
        let attempts = self.running.attempts.lock().expect("running registry");
        attempts
            .iter()
            .filter(|(_, a)| a.finished.is_none_or(|at| at.elapsed() < completion_bound))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// How many attempts run in this process now (finished ones waiting to be recorded not counted).
    fn running_attempts(&self) -> usize {
        let attempts = self.running.attempts.lock().expect("running registry");
        attempts.values().filter(|a| a.finished.is_none()).count()
    }

    /// The heartbeat renewed these leases until `until`.
    fn renewed(&self, ids: &[String], until: Instant) {
        let mut attempts = self.running.attempts.lock().expect("running registry");
        for id in ids {
            if let Some(a) = attempts.get_mut(id) {
                a.lease_until = until;
            }
        }
    }

    /// Stops the attempts still running whose lease may have run out (`margin` before it does):
    /// the database could not be told they are alive, so another process may run them now.
    fn fence_expiring(&self, margin: Duration) -> usize {
        let attempts = self.running.attempts.lock().expect("running registry");
        let soon = Instant::now() + margin;
        let mut stopped = 0;
        for a in attempts.values() {
            if a.finished.is_none() && a.lease_until <= soon && !a.stop.is_cancelled() {
                a.stop(Stop::LeaseLost);
                stopped += 1;
            }
        }
        stopped
    }

    fn release_all(&self) {
        for a in self.running.attempts.lock().expect("running registry").values() {
            a.stop(Stop::Released);
        }
    }
}

/// Settings the executor reads from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub workers: u32,
    pub lease: Duration,
    pub poll_interval: Duration,
    pub max_duration: Duration,
    pub retention: Duration,
    pub shutdown_grace: Duration,
    pub retry: RetryPolicy,
    pub type_limits: Vec<(String, u32)>,
}

impl Settings {
    pub fn from_config(c: &Config) -> Self {
        Settings {
            workers: c.workers,
            lease: c.lease,
            poll_interval: c.poll_interval,
            max_duration: c.max_duration,
            retention: c.retention,
            shutdown_grace: c.shutdown_grace,
            retry: RetryPolicy::from_config(c),
            type_limits: c.type_concurrency.0.clone(),
        }
    }
}

/// Identifies this process's leases: host, pid and a random tag.
pub(crate) fn owner_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    format!("{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
}

pub struct Executor {
    handle: ExecutorHandle,
    task: JoinHandle<()>,
}

impl Executor {
    pub fn start(store: Store, config: &Config, job: Arc<dyn Job>, shutdown: CancellationToken) -> Executor {
        Self::start_with(store, Settings::from_config(config), job, shutdown)
    }

    pub fn start_with(store: Store, settings: Settings, job: Arc<dyn Job>, shutdown: CancellationToken) -> Executor {
        let handle = ExecutorHandle::default();
        let owner = owner_id();
        let _ = handle.owner.set(owner.clone());
        let ctx = Arc::new(worker::Context {
            store,
            owner,
            settings,
            job,
            handle: handle.clone(),
            permits: Arc::new(Semaphore::new(0)),
        });
        ctx.permits.add_permits(ctx.settings.workers as usize);
        tracing::info!(owner = %ctx.owner, workers = ctx.settings.workers, "executor started");
        // Joined before the task starts, so the sweep started next shares it (`Elector::shared`).
        let elector = maintenance::join_election(&ctx);
        let task = tokio::spawn(run(ctx, elector, shutdown));
        Executor { handle, task }
    }

    pub fn handle(&self) -> ExecutorHandle {
        self.handle.clone()
    }

    /// Resolves once shutdown completed: claiming stopped, attempts finished or released.
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

async fn run(ctx: Arc<worker::Context>, elector: maintenance::Elector, shutdown: CancellationToken) {
    let (done_tx, done_rx) = mpsc::unbounded_channel::<Completion>();
    let maintenance = CancellationToken::new();
    let completer = tokio::spawn(worker::complete_batches(ctx.clone(), done_rx));
    let services = maintenance::spawn_all(&ctx, elector, maintenance.clone());

    worker::dispatch(ctx.clone(), done_tx, shutdown).await;

    // Shutdown: let running attempts finish within the grace period, then release the rest.
    let all = ctx.settings.workers;
    let finished = tokio::time::timeout(ctx.settings.shutdown_grace, ctx.permits.acquire_many(all)).await;
    if finished.is_err() {
        tracing::warn!("shutdown grace period over; releasing running attempts");
        ctx.handle.release_all();
        let _ = ctx.permits.acquire_many(all).await;
    }
    // Every worker has sent its completion and dropped its sender: the completer drains and ends.
    let _ = completer.await;
    maintenance.cancel();
    for s in services {
        let _ = s.await;
    }
    tracing::info!(owner = %ctx.owner, "executor stopped");
}
