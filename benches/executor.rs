//! Executor benchmark: no-op executions through the real store and executor.
//!
//!   make bench-executor                    (SQLite in a temporary folder)
//!   make bench-executor DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench
//!
//! 1. Throughput: N executions enqueued, then the executor starts; time until all succeeded.
//! 2. Enqueue-to-start latency when idle: one execution at a time, from the commit to the job start.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deferral::executor::{Executor, Job, JobError, JobOutput, RetryPolicy, Settings};
use deferral::store::{Claimed, NewEvent, Store, now_ms};
use support::{ms, percentile};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn settings(workers: u32) -> Settings {
    Settings {
        workers,
        lease: Duration::from_secs(30),
        poll_interval: Duration::from_secs(1),
        max_duration: Duration::from_secs(60),
        retention: Duration::from_secs(30 * 86_400),
        shutdown_grace: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 8,
            initial_interval: Duration::from_secs(30),
            multiplier: 1.5,
            randomization_factor: 0.5,
            max_interval: Duration::from_secs(600),
        },
        type_limits: vec![],
    }
}

fn event(n: u64) -> NewEvent {
    NewEvent {
        id: format!("evt_{n}"),
        event_type: "invoice.paid".into(),
        created: 1_700_000_000,
        livemode: false,
        api_version: Some("2024-06-20".into()),
        account: None,
        object_id: Some(format!("in_{n}")),
        object_type: Some("invoice".into()),
        payload: "{}".into(),
        run_at: now_ms(),
        discard_at: None,
        max_attempts: 8,
        origin: domain::model::Origin::Webhook,
    }
}

/// Counts runs and tells the bench when each started.
struct Probe {
    runs: AtomicU64,
    started: mpsc::UnboundedSender<Instant>,
}

#[async_trait::async_trait]
impl Job for Probe {
    async fn run(&self, _: &Claimed) -> Result<JobOutput, JobError> {
        let _ = self.started.send(Instant::now());
        self.runs.fetch_add(1, Ordering::Relaxed);
        Ok(JobOutput {
            result: "ok".into(),
            source: None,
        })
    }
}

async fn succeeded(store: &Store) -> i64 {
    store
        .count_by_state()
        .await
        .unwrap()
        .into_iter()
        .find(|(s, _)| s == "succeeded")
        .map_or(0, |(_, n)| n)
}

#[tokio::main]
async fn main() {
    let n: u64 = std::env::var("EXECUTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let workers: u32 = std::env::var("WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let (url, _dir) = support::database_url();
    support::reset(&url).await;
    let store = Store::open(&url).await.unwrap();
    support::drop_indexes(&url).await;
    let backend = store.backend();
    println!(
        "Executor benchmark, release build, {backend}, {} cores\n",
        std::thread::available_parallelism().unwrap()
    );

    // 1. Throughput.
    let enqueue = Instant::now();
    let mut i = 0;
    while i < n {
        let batch: Vec<NewEvent> = (i..(i + 1000).min(n)).map(event).collect();
        store.ingest(&batch).await.unwrap();
        i += batch.len() as u64;
    }
    let enqueue = enqueue.elapsed();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let probe = Arc::new(Probe {
        runs: AtomicU64::new(0),
        started: tx,
    });
    let stop = CancellationToken::new();
    let started = Instant::now();
    let executor = Executor::start_with(store.clone(), settings(workers), probe.clone(), stop.clone());
    // The probe counts starts; the store confirms completions once they stop arriving.
    while probe.runs.load(Ordering::Relaxed) < n || succeeded(&store).await < n as i64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        while rx.try_recv().is_ok() {}
    }
    let elapsed = started.elapsed();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| enqueue {n} executions (batches of 1,000) | {:.0}/s |",
        n as f64 / enqueue.as_secs_f64()
    );
    println!(
        "| run {n} no-op executions, {workers} workers, end to end | {:.0}/s |",
        n as f64 / elapsed.as_secs_f64()
    );

    // 2. Enqueue-to-start when idle.
    while rx.try_recv().is_ok() {}
    let mut latencies = Vec::new();
    for k in 0..1000u64 {
        tokio::time::sleep(Duration::from_millis(2)).await;
        store.ingest(&[event(n + k)]).await.unwrap();
        let committed = Instant::now();
        executor.handle().wake();
        let start = rx.recv().await.unwrap();
        latencies.push(start.saturating_duration_since(committed));
    }
    latencies.sort();
    println!("| enqueue-to-start, idle, p50 | {} |", ms(percentile(&latencies, 0.5)));
    println!("| enqueue-to-start, idle, p99 | {} |", ms(percentile(&latencies, 0.99)));
    stop.cancel();
    executor.stopped().await;
}
