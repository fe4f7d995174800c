//! The durable executor: claims due executions under a lease, runs the job with a timeout,
//! and records each attempt; small maintenance services (heartbeat, rescuer, discarder,
//! pruner, gauges) each do one thing beside it.

pub mod alerter;
mod job;
mod maintenance;
mod retry;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use job::{ErrorKind, Job, JobError, JobOutput, Noop};
pub use retry::RetryPolicy;

use crate::config::Config;
use crate::store::{Completion, Store};

/// The in-process attempt registry: how to abort or release a running attempt.
#[derive(Default)]
struct Running {
    attempts: Mutex<HashMap<String, RunningAttempt>>,
}

struct RunningAttempt {
    stop: CancellationToken,
    /// Stopped for shutdown (released, not counted) rather than aborted by an operator.
    released: Arc<AtomicBool>,
    /// The attempt number: the entry stays until this attempt's completion is recorded.
    attempt: i64,
}

/// Lets other parts of the process wake idle workers and abort local attempts.
#[derive(Clone, Default)]
pub struct ExecutorHandle {
    wake: Arc<Notify>,
    running: Arc<Running>,
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
                a.stop.cancel();
                true
            }
            None => false,
        }
    }

    /// The executions with an attempt running in this process or finished but not yet recorded:
    /// the leases the heartbeat renews.
    fn running_ids(&self) -> Vec<String> {
        self.running
            .attempts
            .lock()
            .expect("running registry")
            .keys()
            .cloned()
            .collect()
    }

    fn release_all(&self) {
        for a in self.running.attempts.lock().expect("running registry").values() {
            a.released.store(true, std::sync::atomic::Ordering::SeqCst);
            a.stop.cancel();
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
        let ctx = Arc::new(worker::Context {
            store,
            owner: owner_id(),
            settings,
            job,
            handle: handle.clone(),
            permits: Arc::new(Semaphore::new(0)),
        });
        ctx.permits.add_permits(ctx.settings.workers as usize);
        tracing::info!(owner = %ctx.owner, workers = ctx.settings.workers, "executor started");
        let task = tokio::spawn(run(ctx, shutdown));
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

async fn run(ctx: Arc<worker::Context>, shutdown: CancellationToken) {
    let (done_tx, done_rx) = mpsc::unbounded_channel::<Completion>();
    let maintenance = CancellationToken::new();
    let completer = tokio::spawn(worker::complete_batches(ctx.clone(), done_rx));
    let services = maintenance::spawn_all(ctx.clone(), maintenance.clone());

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
