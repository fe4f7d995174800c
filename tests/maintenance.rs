//! The maintenance services one at a time, each `run_once` against a real database (SQLite, or
//! PostgreSQL with DEFERRAL_TEST_BACKEND=postgres), and the executions' own max attempts.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deferral::executor::maintenance::{Discarder, Elector, Pruner, Rescuer, Service};
use deferral::executor::{Executor, ExecutorHandle, Job, JobError, JobOutput, RetryPolicy, Settings};
use deferral::store::{Claimed, Completion, Finish, NewEvent, Store, now_ms};
use tokio_util::sync::CancellationToken;

const DAY_MS: i64 = 86_400_000;

fn new_event(id: &str, object_id: &str, max_attempts: i64) -> NewEvent {
    NewEvent {
        id: id.into(),
        event_type: "customer.updated".into(),
        created: 1,
        livemode: false,
        api_version: Some("2024-06-20".into()),
        account: None,
        object_id: Some(object_id.into()),
        object_type: Some("customer".into()),
        payload: support::event(id, "customer.updated", object_id, 1),
        run_at: now_ms() - 1000,
        discard_at: None,
        max_attempts,
        origin: domain::model::Origin::Webhook,
    }
}

async fn open() -> (Store, tempfile::TempDir) {
    let (url, dir) = support::fresh_database().await;
    (Store::open(&url).await.unwrap(), dir)
}

/// Stores the events; answers their executions' ids by event id.
async fn ingest(store: &Store, events: Vec<NewEvent>) -> HashMap<String, String> {
    let outcomes = store.ingest(&events).await.unwrap();
    events
        .iter()
        .zip(outcomes)
        .map(|(e, o)| (e.id.clone(), o.execution_id))
        .collect()
}

/// Claims every due execution for `owner` under a lease of `lease_ms`; answers them by event id.
async fn claim(store: &Store, owner: &str, lease_ms: i64) -> HashMap<String, Claimed> {
    let claimed = store.claim(owner, 100, lease_ms, &[]).await.unwrap();
    claimed.into_iter().map(|c| (c.row.event_id.clone(), c)).collect()
}

async fn state(store: &Store, id: &str) -> Option<String> {
    store.execution(id).await.unwrap().map(|r| r.state.to_string())
}

/// Records `claimed`'s attempt as ended with `finish` at `finished_at`.
async fn complete(store: &Store, owner: &str, claimed: &Claimed, finish: Finish, finished_at: i64) {
    let c = Completion {
        execution_id: claimed.row.id.clone(),
        attempt: claimed.row.attempts,
        started_at: finished_at - 10,
        finished_at,
        duration_us: 10_000,
        finish,
    };
    assert_eq!(store.complete(owner, &[c]).await.unwrap(), 1);
}

#[tokio::test]
async fn the_rescuer_takes_back_expired_leases_only_and_says_which() {
    let (store, _dir) = open().await;
    // A worker that died: its leases (1 ms) have run out. Another one's lease runs a minute.
    let mut ids = ingest(
        &store,
        vec![new_event("evt_retry", "o1", 3), new_event("evt_last", "o2", 1)],
    )
    .await;
    assert_eq!(claim(&store, "dead-worker", 1).await.len(), 2);
    ids.extend(ingest(&store, vec![new_event("evt_alive", "o3", 3)]).await);
    assert_eq!(claim(&store, "live-worker", 60_000).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(20)).await;

    let rescuer = Rescuer::new(
        store.clone(),
        ExecutorHandle::default(),
        Duration::from_secs(30),
        Duration::from_secs(1),
    );
    let mut report = rescuer.run_once().await.unwrap();
    report.rescued.sort();
    let mut expected = vec![ids["evt_retry"].clone(), ids["evt_last"].clone()];
    expected.sort();
    assert_eq!(report.rescued, expected);

    // Attempts left: scheduled again; none left: failed. Both attempts recorded as lost.
    assert_eq!(state(&store, &ids["evt_retry"]).await.as_deref(), Some("scheduled"));
    assert_eq!(state(&store, &ids["evt_last"]).await.as_deref(), Some("failed"));
    assert_eq!(state(&store, &ids["evt_alive"]).await.as_deref(), Some("running"));
    for event in ["evt_retry", "evt_last"] {
        let attempts = store.attempts(&ids[event]).await.unwrap();
        assert_eq!(attempts.len(), 1, "{event}: {attempts:?}");
        assert_eq!(attempts[0].outcome, "lost");
    }
    // Nothing more to take back.
    assert!(rescuer.run_once().await.unwrap().rescued.is_empty());
}

#[tokio::test]
async fn the_pruner_deletes_only_finished_executions_older_than_the_retention() {
    let (store, _dir) = open().await;
    let mut waiting = new_event("evt_waiting", "o3", 3);
    waiting.run_at = now_ms() + 3_600_000;
    let ids = ingest(
        &store,
        vec![
            new_event("evt_old", "o1", 3),
            new_event("evt_recent", "o2", 3),
            waiting,
            new_event("evt_running", "o4", 3),
            new_event("evt_old_failed", "o5", 3),
        ],
    )
    .await;
    let claimed = claim(&store, "worker", 60_000).await;
    assert_eq!(claimed.len(), 4, "{claimed:?}");
    let succeeded = || Finish::Succeeded {
        result: "done".into(),
        source: None,
    };
    let failed = Finish::Failed {
        kind: "permanent",
        message: "no".into(),
    };
    complete(
        &store,
        "worker",
        &claimed["evt_old"],
        succeeded(),
        now_ms() - 2 * DAY_MS,
    )
    .await;
    complete(
        &store,
        "worker",
        &claimed["evt_old_failed"],
        failed,
        now_ms() - 2 * DAY_MS,
    )
    .await;
    complete(&store, "worker", &claimed["evt_recent"], succeeded(), now_ms() - 60_000).await;

    let pruner = Pruner::new(store.clone(), Duration::from_secs(86_400));
    let report = pruner.run_once().await.unwrap();
    assert_eq!(report.executions, 2, "{report:?}");

    for gone in ["evt_old", "evt_old_failed"] {
        assert_eq!(state(&store, &ids[gone]).await, None, "{gone} kept");
        assert!(
            store.attempts(&ids[gone]).await.unwrap().is_empty(),
            "{gone}'s attempts kept"
        );
    }
    assert_eq!(state(&store, &ids["evt_recent"]).await.as_deref(), Some("succeeded"));
    assert_eq!(state(&store, &ids["evt_waiting"]).await.as_deref(), Some("scheduled"));
    assert_eq!(state(&store, &ids["evt_running"]).await.as_deref(), Some("running"));
    assert_eq!(pruner.run_once().await.unwrap().executions, 0);
}

#[tokio::test]
async fn the_discarder_discards_only_scheduled_executions_past_their_deadline() {
    let (store, _dir) = open().await;
    let mut late = new_event("evt_late", "o1", 3);
    late.discard_at = Some(now_ms() - 1);
    let mut in_time = new_event("evt_in_time", "o2", 3);
    in_time.discard_at = Some(now_ms() + 3_600_000);
    let mut started = new_event("evt_started", "o3", 3);
    started.discard_at = Some(now_ms() + 300);
    // Started before its deadline: it runs to its end, whenever that is.
    let mut ids = ingest(&store, vec![started]).await;
    assert_eq!(claim(&store, "worker", 60_000).await.len(), 1);
    ids.extend(ingest(&store, vec![late, in_time]).await);
    tokio::time::sleep(Duration::from_millis(400)).await;

    let discarder = Discarder::new(store.clone(), Duration::from_secs(1));
    assert_eq!(discarder.run_once().await.unwrap().discarded, 1);
    let row = store.execution(&ids["evt_late"]).await.unwrap().unwrap();
    assert_eq!(row.state, "discarded");
    assert!(row.last_error.unwrap().contains("deadline"));
    assert_eq!(state(&store, &ids["evt_in_time"]).await.as_deref(), Some("scheduled"));
    assert_eq!(state(&store, &ids["evt_started"]).await.as_deref(), Some("running"));
    assert_eq!(discarder.run_once().await.unwrap().discarded, 0);
}

#[tokio::test]
async fn a_process_alone_on_its_database_leads_and_its_parts_share_one_election() {
    let (store, _dir) = open().await;
    let executor = Elector::shared(&store, Duration::from_millis(100));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !executor.is_leader() {
        assert!(Instant::now() < deadline, "never elected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The sweep, on a clone of the store, joins the same election (and may make it try sooner).
    let sweep = Elector::shared(&store.clone(), Duration::from_millis(50));
    assert!(sweep.is_leader());
    assert_eq!(executor.every(), Duration::from_millis(50));
}

/// Fails every attempt as retryable.
struct AlwaysFails;

#[async_trait::async_trait]
impl Job for AlwaysFails {
    async fn run(&self, _: &Claimed) -> Result<JobOutput, JobError> {
        Err(JobError::retryable("503 from upstream"))
    }
}

#[tokio::test]
async fn an_execution_gets_the_attempts_its_row_allows_whatever_the_process_setting() {
    let (store, _dir) = open().await;
    let settings = Settings {
        workers: 2,
        lease: Duration::from_secs(5),
        poll_interval: Duration::from_millis(50),
        max_duration: Duration::from_secs(30),
        retention: Duration::from_secs(86_400),
        shutdown_grace: Duration::from_secs(2),
        retry: RetryPolicy {
            // The process now says 5; the execution was stored with 2.
            max_attempts: 5,
            initial_interval: Duration::from_millis(10),
            multiplier: 1.0,
            randomization_factor: 0.0,
            max_interval: Duration::from_millis(10),
        },
        type_limits: vec![],
    };
    let ids = ingest(&store, vec![new_event("evt_twice", "o1", 2)]).await;
    let stop = CancellationToken::new();
    let executor = Executor::start_with(store.clone(), settings, Arc::new(AlwaysFails), stop.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    let row = loop {
        let row = store.execution(&ids["evt_twice"]).await.unwrap().unwrap();
        if row.state == "failed" {
            break row;
        }
        assert!(Instant::now() < deadline, "never failed: {row:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop.cancel();
    executor.stopped().await;
    assert_eq!(row.attempts, 2, "{row:?}");
    let error = row.last_error.unwrap();
    assert!(error.contains("(attempt 2 of 2, no tries left)"), "{error}");
}
