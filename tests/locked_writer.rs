//! Another process holds the database's write lock for longer than the lease while attempts run
//! (SQLite: a connection in `BEGIN IMMEDIATE`; PostgreSQL: `LOCK TABLE executions IN EXCLUSIVE
//! MODE`), the repeatable stand-in for a writer starved of CPU. Every call the executor makes
//! meanwhile fails within its deadline instead of waiting, and the executor says it is degraded;
//! once the lock is gone completions resume, every execution succeeds, no execution ever runs two
//! attempts at once, and the executor says ok again. Both backends.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deferral::executor::{Executor, Job, JobError, JobOutput, RetryPolicy, Settings, Verdict};
use deferral::store::{Claimed, NewEvent, Store, now_ms};
use support::lock::WriteLock;
use tokio_util::sync::CancellationToken;

const EXECUTIONS: usize = 24;
const LEASE: Duration = Duration::from_secs(1);
/// Longer than the lease, and than an attempt.
const LOCKED_FOR: Duration = Duration::from_secs(4);

/// Takes its time and records, per execution, how many of its attempts run at once.
#[derive(Default)]
struct Watched {
    running: Mutex<HashSet<String>>,
    overlaps: Mutex<Vec<String>>,
    runs: Mutex<HashMap<String, usize>>,
}

#[async_trait::async_trait]
impl Job for Watched {
    async fn run(&self, c: &Claimed) -> Result<JobOutput, JobError> {
        let id = c.row.id.clone();
        if !self.running.lock().unwrap().insert(id.clone()) {
            self.overlaps.lock().unwrap().push(id.clone());
        }
        *self.runs.lock().unwrap().entry(id.clone()).or_default() += 1;
        // Removed however the attempt ends (completed, or stopped when its lease ran out).
        struct Done<'a>(&'a Watched, String);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.running.lock().unwrap().remove(&self.1);
            }
        }
        let _done = Done(self, id);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Ok(JobOutput {
            result: "ok".into(),
            source: None,
        })
    }
}

fn event(i: usize) -> NewEvent {
    let id = format!("evt_lock_{i}");
    let object = format!("cus_lock{i}");
    NewEvent {
        payload: support::event(&id, "test.locked", &object, 1_700_000_000),
        id,
        event_type: "test.locked".into(),
        created: 1_700_000_000,
        livemode: false,
        api_version: None,
        account: None,
        object_id: Some(object),
        object_type: Some("customer".into()),
        run_at: now_ms(),
        discard_at: None,
        max_attempts: 100,
        origin: domain::model::Origin::Webhook,
    }
}

async fn succeeded(store: &Store) -> i64 {
    store
        .count_by_state()
        .await
        .unwrap()
        .into_iter()
        .filter(|(s, _)| s == "succeeded")
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_locked_longer_than_the_lease_stalls_nothing_and_runs_nothing_twice_at_once() {
    let (url, _dir) = support::fresh_database().await;
    // A short deadline: each call waits at most this long on the lock.
    let store = Store::open_with(&url, Duration::from_secs(1)).await.unwrap();
    let job = Arc::new(Watched::default());
    let settings = Settings {
        workers: 8,
        lease: LEASE,
        poll_interval: Duration::from_millis(50),
        max_duration: Duration::from_secs(30),
        retention: Duration::from_secs(86_400),
        shutdown_grace: Duration::from_secs(1),
        retry: RetryPolicy {
            max_attempts: 100,
            initial_interval: Duration::from_millis(50),
            multiplier: 1.0,
            randomization_factor: 0.0,
            max_interval: Duration::from_millis(50),
        },
        type_limits: vec![],
    };
    let stop = CancellationToken::new();
    let executor = Executor::start_with(store.clone(), settings, job.clone(), stop.clone());
    store
        .ingest(&(0..EXECUTIONS).map(event).collect::<Vec<_>>())
        .await
        .unwrap();
    executor.handle().wake();

    // Attempts are running (8 workers, 1.5 s each) when the lock is taken.
    let deadline = Instant::now() + Duration::from_secs(10);
    while job.running.lock().unwrap().len() < 4 {
        assert!(Instant::now() < deadline, "attempts never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let lock = WriteLock::take(&url).await;
    let locked = Instant::now();
    let before = succeeded(&store).await;
    // The executor says so meanwhile, every time it is asked once a lease without progress (and
    // a watchdog run) has passed: not only when the sample misses the dispatcher holding the free
    // workers while a claim waits on the lock, which once made it look busy, and say ok.
    let handle = executor.handle();
    let live = handle.liveness();
    let mut samples = 0;
    while locked.elapsed() < LOCKED_FOR {
        let verdict = live.verdict();
        if locked.elapsed() > LEASE + Duration::from_millis(1500) {
            samples += 1;
            assert!(
                matches!(verdict, Verdict::Degraded(_)),
                "{verdict:?} after {:?} locked; {}; claim age {:?}, completion age {:?}",
                locked.elapsed(),
                live.waits(),
                live.claim_age(),
                live.completion_age()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(samples > 20, "the verdict was asked {samples} times");
    assert_eq!(succeeded(&store).await, before, "nothing can be recorded while locked");
    lock.release().await;
    let released = Instant::now();

    let deadline = Instant::now() + Duration::from_secs(30);
    while succeeded(&store).await < EXECUTIONS as i64 {
        assert!(
            Instant::now() < deadline,
            "only {} of {EXECUTIONS} succeeded 30 s after the lock was released",
            succeeded(&store).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "all succeeded {:?} after the lock was released; runs per execution: {:?}",
        released.elapsed(),
        job.runs.lock().unwrap().values().max()
    );
    assert_eq!(*job.overlaps.lock().unwrap(), Vec::<String>::new(), "ran twice at once");
    assert!(live.completion_age() < Duration::from_secs(5));
    // And says it makes progress again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while live.verdict() != Verdict::Ok {
        assert!(Instant::now() < deadline, "still {:?} after recovering", live.verdict());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    executor.stopped().await;
}
