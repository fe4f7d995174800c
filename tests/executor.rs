//! The executor against a real database: retries, timeouts, concurrency, order, discard,
//! pruning, cancellation and shutdown. Jobs here stand in for handlers and record what they see.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deferral::executor::{Executor, Job, JobError, JobOutput, RetryPolicy, Settings};
use deferral::store::{Claimed, ExecutionRow, NewEvent, Store, now_ms};
use tokio_util::sync::CancellationToken;

fn settings() -> Settings {
    Settings {
        workers: 8,
        lease: Duration::from_secs(5),
        poll_interval: Duration::from_millis(50),
        max_duration: Duration::from_secs(30),
        retention: Duration::from_secs(30 * 86_400),
        shutdown_grace: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 3,
            initial_interval: Duration::from_millis(20),
            multiplier: 2.0,
            randomization_factor: 0.0,
            max_interval: Duration::from_millis(100),
        },
        type_limits: vec![],
    }
}

fn new_event(id: &str, event_type: &str, object_id: &str, created: i64) -> NewEvent {
    NewEvent {
        id: id.into(),
        event_type: event_type.into(),
        created,
        livemode: false,
        api_version: Some("2024-06-20".into()),
        account: None,
        object_id: Some(object_id.into()),
        object_type: Some("customer".into()),
        payload: support::event(id, event_type, object_id, created),
        run_at: now_ms(),
        discard_at: None,
        max_attempts: 3,
        origin: domain::model::Origin::Webhook,
    }
}

struct Harness {
    url: String,
    store: Store,
    stop: CancellationToken,
    executor: Option<Executor>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Harness {
        let (url, dir) = support::fresh_database().await;
        let store = Store::open(&url).await.unwrap();
        Harness {
            url,
            store,
            stop: CancellationToken::new(),
            executor: None,
            _dir: dir,
        }
    }

    fn run(&mut self, settings: Settings, job: Arc<dyn Job>) {
        self.executor = Some(Executor::start_with(
            self.store.clone(),
            settings,
            job,
            self.stop.clone(),
        ));
    }

    async fn ingest(&self, events: Vec<NewEvent>) -> Vec<String> {
        let ids = self
            .store
            .ingest(&events)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.execution_id)
            .collect();
        if let Some(e) = &self.executor {
            e.handle().wake();
        }
        ids
    }

    async fn wait(&self, id: &str, state: &str) -> ExecutionRow {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let row = self.store.execution(id).await.unwrap().unwrap();
            if row.state == state {
                return row;
            }
            assert!(
                Instant::now() < deadline,
                "{id} is {} (wanted {state}): {row:?}",
                row.state
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Runs SQL of the test's own on the database, beside the store.
    async fn execute(&self, sqlite: &str, postgres: &str) {
        if self.url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&self.url).await.unwrap();
            sqlx::raw_sql(sqlite).execute(&pool).await.unwrap();
            pool.close().await;
        } else {
            let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
            sqlx::raw_sql(postgres).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }

    /// Stops the executor; the harness (and with it the database's folder) stays for reading.
    async fn shutdown(&mut self) {
        self.stop.cancel();
        self.executor.take().unwrap().stopped().await;
    }
}

/// A job driven by a closure over (execution, how many times it ran before).
struct FnJob<F>(F, Mutex<HashMap<String, usize>>);

#[async_trait::async_trait]
impl<F> Job for FnJob<F>
where
    F: Fn(&Claimed, usize) -> Result<JobOutput, JobError> + Send + Sync + 'static,
{
    async fn run(&self, c: &Claimed) -> Result<JobOutput, JobError> {
        let n = {
            let mut runs = self.1.lock().unwrap();
            let n = runs.entry(c.row.id.clone()).or_default();
            *n += 1;
            *n - 1
        };
        (self.0)(c, n)
    }
}

fn job<F>(f: F) -> Arc<dyn Job>
where
    F: Fn(&Claimed, usize) -> Result<JobOutput, JobError> + Send + Sync + 'static,
{
    Arc::new(FnJob(f, Mutex::new(HashMap::new())))
}

fn ok() -> Result<JobOutput, JobError> {
    Ok(JobOutput {
        result: "done".into(),
        source: None,
    })
}

/// Sleeps for a while and records how many ran at once, overall and per object.
#[derive(Default)]
struct Recorder {
    sleep: Duration,
    now: AtomicUsize,
    max: AtomicUsize,
    order: Mutex<Vec<(String, i64)>>,
    active_objects: Mutex<HashMap<String, usize>>,
    object_overlap: AtomicUsize,
}

#[async_trait::async_trait]
impl Job for Recorder {
    async fn run(&self, c: &Claimed) -> Result<JobOutput, JobError> {
        let object = c.row.object_id.clone().unwrap_or_default();
        {
            let mut active = self.active_objects.lock().unwrap();
            let n = active.entry(object.clone()).or_default();
            *n += 1;
            if *n > 1 {
                self.object_overlap.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.order.lock().unwrap().push((object.clone(), c.row.event_created));
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.sleep).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        *self.active_objects.lock().unwrap().get_mut(&object).unwrap() -= 1;
        ok()
    }
}

#[tokio::test]
async fn retryable_errors_are_retried_with_back_off_then_succeed() {
    let mut h = Harness::new().await;
    h.run(
        settings(),
        job(|_, n| {
            if n < 2 {
                Err(JobError::retryable(format!("boom {n}")))
            } else {
                ok()
            }
        }),
    );
    let id = h.ingest(vec![new_event("evt_1", "a", "obj", 1)]).await.remove(0);
    let row = h.wait(&id, "succeeded").await;
    assert_eq!(row.attempts, 3);
    let attempts = h.store.attempts(&id).await.unwrap();
    let outcomes: Vec<_> = attempts
        .iter()
        .map(|a| (a.outcome.as_str(), a.error_kind.as_deref()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("error", Some("retryable")),
            ("error", Some("retryable")),
            ("succeeded", None)
        ]
    );
    assert_eq!(attempts[1].error_message.as_deref(), Some("boom 1"));
    // Back-off: 20 ms after the first failure, 40 ms after the second.
    let gap = |a: &domain::model::Attempt, b: &domain::model::Attempt| {
        let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
        t(&b.started_at) - t(&a.finished_at)
    };
    assert!(gap(&attempts[0], &attempts[1]) >= 19, "{attempts:?}");
    assert!(gap(&attempts[1], &attempts[2]) >= 39, "{attempts:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn permanent_errors_fail_at_once_and_exhausted_retries_fail() {
    let mut h = Harness::new().await;
    h.run(
        settings(),
        job(|c, _| {
            if c.row.event_type == "permanent" {
                Err(JobError::permanent("resource_missing: no such event"))
            } else {
                Err(JobError::retryable("still down"))
            }
        }),
    );
    let ids = h
        .ingest(vec![
            new_event("evt_p", "permanent", "o1", 1),
            new_event("evt_r", "retry", "o2", 1),
        ])
        .await;
    let p = h.wait(&ids[0], "failed").await;
    assert_eq!(p.attempts, 1);
    assert!(p.last_error.unwrap().contains("resource_missing"));
    let r = h.wait(&ids[1], "failed").await;
    assert_eq!(r.attempts, 3);
    assert!(r.last_error.unwrap().contains("no tries left"));
    assert_eq!(h.store.attempts(&ids[1]).await.unwrap().len(), 3);
    h.shutdown().await;
}

#[tokio::test]
async fn an_attempt_over_max_duration_is_cancelled_as_a_timeout_and_retried() {
    let mut h = Harness::new().await;
    let mut s = settings();
    s.max_duration = Duration::from_millis(150);
    struct Slow;
    #[async_trait::async_trait]
    impl Job for Slow {
        async fn run(&self, c: &Claimed) -> Result<JobOutput, JobError> {
            if c.row.attempts == 1 {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            ok()
        }
    }
    h.run(s, Arc::new(Slow));
    let id = h.ingest(vec![new_event("evt_slow", "a", "o", 1)]).await.remove(0);
    h.wait(&id, "succeeded").await;
    let attempts = h.store.attempts(&id).await.unwrap();
    assert_eq!(attempts[0].error_kind.as_deref(), Some("timeout"));
    assert!(
        attempts[0].duration_ms >= 150.0 && attempts[0].duration_ms < 2000.0,
        "{attempts:?}"
    );
    assert_eq!(attempts[1].outcome, "succeeded");
    h.shutdown().await;
}

#[tokio::test]
async fn the_worker_limit_bounds_attempts_running_at_once() {
    let mut h = Harness::new().await;
    let mut s = settings();
    s.workers = 3;
    let rec = Arc::new(Recorder {
        sleep: Duration::from_millis(60),
        ..Default::default()
    });
    h.run(s, rec.clone());
    let events = (0..12)
        .map(|i| new_event(&format!("evt_{i}"), "a", &format!("o{i}"), 1))
        .collect();
    let ids = h.ingest(events).await;
    for id in &ids {
        h.wait(id, "succeeded").await;
    }
    assert_eq!(rec.max.load(Ordering::SeqCst), 3);
    h.shutdown().await;
}

#[tokio::test]
async fn a_per_type_limit_holds_while_other_types_run() {
    let mut h = Harness::new().await;
    let mut s = settings();
    s.type_limits = vec![("limited".into(), 1)];
    let rec = Arc::new(Recorder {
        sleep: Duration::from_millis(40),
        ..Default::default()
    });
    h.run(s, rec.clone());
    let events = (0..6)
        .map(|i| new_event(&format!("evt_{i}"), "limited", &format!("o{i}"), 1))
        .collect();
    let ids = h.ingest(events).await;
    for id in &ids {
        h.wait(id, "succeeded").await;
    }
    assert_eq!(rec.max.load(Ordering::SeqCst), 1, "the limited type ran concurrently");
    h.shutdown().await;
}

#[tokio::test]
async fn executions_for_one_object_run_one_at_a_time_in_created_order() {
    let mut h = Harness::new().await;
    // Delivered out of order, for two objects, before any worker runs.
    let events = vec![
        new_event("evt_c", "customer.updated", "cus_a", 30),
        new_event("evt_x", "customer.updated", "cus_b", 20),
        new_event("evt_a", "customer.updated", "cus_a", 10),
        new_event("evt_y", "customer.updated", "cus_b", 10),
        new_event("evt_b", "customer.updated", "cus_a", 20),
        new_event("evt_b2", "customer.updated", "cus_a", 20), // same second: arrival decides
    ];
    let ids = h.ingest(events).await;
    let rec = Arc::new(Recorder {
        sleep: Duration::from_millis(30),
        ..Default::default()
    });
    h.run(settings(), rec.clone());
    for id in &ids {
        h.wait(id, "succeeded").await;
    }
    assert_eq!(
        rec.object_overlap.load(Ordering::SeqCst),
        0,
        "two executions of one object overlapped"
    );
    let order = rec.order.lock().unwrap().clone();
    let of = |o: &str| {
        order
            .iter()
            .filter(|(obj, _)| obj == o)
            .map(|(_, c)| *c)
            .collect::<Vec<_>>()
    };
    assert_eq!(of("cus_a"), vec![10, 20, 20, 30]);
    assert_eq!(of("cus_b"), vec![10, 20]);
    // Different objects still ran side by side.
    assert!(rec.max.load(Ordering::SeqCst) >= 2);
    h.shutdown().await;
}

#[tokio::test]
async fn executions_not_started_before_their_deadline_are_discarded() {
    let mut h = Harness::new().await;
    let mut late = new_event("evt_late", "a", "o1", 1);
    late.discard_at = Some(now_ms() - 1);
    let mut fine = new_event("evt_fine", "a", "o2", 1);
    fine.discard_at = Some(now_ms() + 60_000);
    let ids = h.ingest(vec![late, fine]).await;
    h.run(settings(), job(|_, _| ok()));
    let row = h.wait(&ids[0], "discarded").await;
    assert_eq!(row.attempts, 0);
    assert!(row.last_error.unwrap().contains("deadline"));
    h.wait(&ids[1], "succeeded").await;
    h.shutdown().await;
}

#[tokio::test]
async fn finished_executions_past_the_retention_are_pruned_with_their_attempts() {
    let mut h = Harness::new().await;
    let mut s = settings();
    s.retention = Duration::from_millis(300);
    h.run(s, job(|_, _| ok()));
    let id = h.ingest(vec![new_event("evt_old", "a", "o", 1)]).await.remove(0);
    h.wait(&id, "succeeded").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.store.execution(&id).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "not pruned");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(h.store.attempts(&id).await.unwrap().is_empty());
    assert_eq!(h.store.event_payload("evt_old").await.unwrap(), None);
    h.shutdown().await;
}

#[tokio::test]
async fn cancelling_a_running_execution_aborts_its_attempt() {
    let mut h = Harness::new().await;
    let rec = Arc::new(Recorder {
        sleep: Duration::from_secs(60),
        ..Default::default()
    });
    h.run(settings(), rec.clone());
    let id = h.ingest(vec![new_event("evt_run", "a", "o", 1)]).await.remove(0);
    h.wait(&id, "running").await;
    h.store.act(&id, domain::model::Action::Cancel).await.unwrap();
    h.executor.as_ref().unwrap().handle().abort(&id);
    let row = h.wait(&id, "cancelled").await;
    assert_eq!(row.attempts, 1);
    let attempts = h.store.attempts(&id).await.unwrap();
    assert_eq!(attempts[0].outcome, "aborted");
    h.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_short_attempts_finish_and_releases_long_ones_uncounted() {
    let mut h = Harness::new().await;
    let mut s = settings();
    s.shutdown_grace = Duration::from_millis(400);
    struct Mixed;
    #[async_trait::async_trait]
    impl Job for Mixed {
        async fn run(&self, c: &Claimed) -> Result<JobOutput, JobError> {
            let ms = if c.row.event_type == "short" { 150 } else { 60_000 };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ok()
        }
    }
    h.run(s, Arc::new(Mixed));
    let ids = h
        .ingest(vec![
            new_event("evt_s", "short", "o1", 1),
            new_event("evt_l", "long", "o2", 1),
        ])
        .await;
    h.wait(&ids[0], "running").await;
    h.wait(&ids[1], "running").await;
    let started = Instant::now();
    h.shutdown().await;
    let store = &h.store;
    assert!(started.elapsed() < Duration::from_secs(5));
    let short = store.execution(&ids[0]).await.unwrap().unwrap();
    assert_eq!(short.state, "succeeded");
    let long = store.execution(&ids[1]).await.unwrap().unwrap();
    assert_eq!(long.state, "scheduled");
    assert_eq!(long.attempts, 0, "a released attempt is not counted");
    assert!(store.attempts(&ids[1]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_new_execution_starts_within_milliseconds_when_idle() {
    let mut h = Harness::new().await;
    let mut s = settings();
    s.poll_interval = Duration::from_secs(10); // only the wake-up can explain a fast start
    h.run(s, job(|_, _| ok()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = h.ingest(vec![new_event("evt_fast", "a", "o", 1)]).await.remove(0);
    let row = h.wait(&id, "succeeded").await;
    let waited = row.started_at.unwrap() - row.created_at;
    assert!(waited < 1000, "started {waited} ms after commit");
    h.shutdown().await;
}

#[path = "executor/bookkeeping.rs"]
mod bookkeeping;
