//! Leader election on PostgreSQL: processes (here, stores of their own on one database, each
//! with its own election) agree on one leader; when it stops, another takes over within an
//! interval, and when its connections go silent, within its lease; the leader-only services run
//! in the leader alone.
//! PostgreSQL only: runs with DEFERRAL_TEST_BACKEND=postgres.

mod support;

use std::time::{Duration, Instant};

use deferral::executor::maintenance::{self, Duty, Elector, Pruner};
use deferral::store::{Completion, Finish, NewEvent, Store, now_ms};
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_millis(300);
/// What a busy machine may add to an interval: a try's own round trips, a late timer.
const SLACK: Duration = Duration::from_millis(700);

async fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

/// Two processes' elections on one fresh database; answers (leader, follower) once one leads.
async fn two_processes() -> (Elector, Elector, String) {
    let (url, _dir) = support::fresh_database().await;
    let a = Elector::start(Store::open(&url).await.unwrap(), EVERY);
    let b = Elector::start(Store::open(&url).await.unwrap(), EVERY);
    wait_for("a leader", EVERY * 3 + SLACK, || a.is_leader() || b.is_leader()).await;
    // Both have tried by now; exactly one leads, and goes on leading.
    for _ in 0..20 {
        assert!(
            a.is_leader() != b.is_leader(),
            "a: {}, b: {}",
            a.is_leader(),
            b.is_leader()
        );
        tokio::time::sleep(EVERY / 10).await;
    }
    if a.is_leader() { (a, b, url) } else { (b, a, url) }
}

#[tokio::test]
async fn one_of_two_processes_leads_and_the_other_takes_over_within_an_interval_when_it_stops() {
    if !support::on_postgres() {
        return;
    }
    let (leader, follower, _) = two_processes().await;
    drop(leader);
    let took = wait_for("the follower leads", EVERY + SLACK, || follower.is_leader()).await;
    eprintln!("took over after {took:?} (interval {EVERY:?})");
}

/// The field's stall: every connection of the leader left mid-protocol (a NAT entry lost), its
/// process alive but unable to reach the database. Its sessions stay open at the server for good;
/// an advisory lock held by one of them kept the lead there, and no process rescued anything.
#[tokio::test]
async fn a_leader_whose_connections_go_silent_loses_the_lead_to_another() {
    if !support::on_postgres() {
        return;
    }
    let (url, _dir) = support::fresh_database().await;
    let proxy = support::proxy::Proxy::start(&support::proxy::host_port(&url)).await;
    let stranded = Elector::start(
        Store::open_with(&proxy.url_for(&url), Duration::from_secs(1))
            .await
            .unwrap(),
        EVERY,
    );
    wait_for("the first process leads", EVERY * 3 + SLACK, || stranded.is_leader()).await;
    let follower = Elector::start(Store::open(&url).await.unwrap(), EVERY);
    for _ in 0..10 {
        assert!(stranded.is_leader() && !follower.is_leader(), "one leader, the first");
        tokio::time::sleep(EVERY / 5).await;
    }
    proxy.strand();
    // The lease lasts three intervals from the last renewal; the follower tries every interval.
    let took = wait_for("the follower leads", EVERY * 4 + SLACK, || follower.is_leader()).await;
    eprintln!("took over after {took:?} (interval {EVERY:?})");
    // The silent one's renewals time out: it steps down on its own.
    wait_for(
        "the silent leader steps down",
        Duration::from_secs(1) + EVERY + SLACK,
        || !stranded.is_leader(),
    )
    .await;
    for _ in 0..10 {
        assert!(follower.is_leader() && !stranded.is_leader());
        tokio::time::sleep(EVERY / 5).await;
    }
}

#[tokio::test]
async fn only_the_leader_runs_the_leader_only_services() {
    if !support::on_postgres() {
        return;
    }
    let (leader, follower, url) = two_processes().await;
    // A finished execution two days old.
    let store = Store::open(&url).await.unwrap();
    let id = "evt_old";
    let execution_id = store
        .ingest(&[NewEvent {
            id: id.into(),
            event_type: "customer.updated".into(),
            created: 1,
            livemode: false,
            api_version: None,
            account: None,
            object_id: Some("cus_1".into()),
            object_type: Some("customer".into()),
            payload: support::event(id, "customer.updated", "cus_1", 1),
            run_at: now_ms() - 1000,
            discard_at: None,
            max_attempts: 3,
            origin: domain::model::Origin::Webhook,
        }])
        .await
        .unwrap()
        .remove(0)
        .execution_id;
    let claimed = store.claim("worker", 1, 60_000, &[]).await.unwrap().remove(0);
    let finished_at = now_ms() - 2 * 86_400_000;
    let done = Completion {
        execution_id: execution_id.clone(),
        attempt: claimed.row.attempts,
        started_at: finished_at - 10,
        finished_at,
        duration_us: 10_000,
        finish: Finish::Succeeded {
            result: "ok".into(),
            source: None,
        },
    };
    store.complete("worker", &[done]).await.unwrap();

    // The follower's pruner (a day's retention: every minute, and at once on becoming leader)
    // leaves it while the other process leads.
    let stop = CancellationToken::new();
    let pruner = Pruner::new(store.clone(), Duration::from_secs(86_400));
    let task = maintenance::spawn(pruner, Duty::Leader(follower.clone()), stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        store.execution(&execution_id).await.unwrap().is_some(),
        "pruned by a follower"
    );

    // The leader stops: the follower leads and prunes at once.
    drop(leader);
    let deadline = Instant::now() + EVERY + SLACK + Duration::from_millis(500);
    while store.execution(&execution_id).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the new leader did not prune");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(follower.is_leader());
    stop.cancel();
    task.await.unwrap();
}

/// A leader-only service that counts its runs; each waits `takes` (cut short: counted apart).
struct Counted {
    runs: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    cut: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    takes: Duration,
}

/// Counts a run that is dropped before its end.
struct Unfinished(std::sync::Arc<std::sync::atomic::AtomicUsize>, bool);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

impl maintenance::Service for Counted {
    type Report = ();

    fn name(&self) -> &'static str {
        "counted"
    }

    fn every(&self) -> Duration {
        Duration::from_secs(3600)
    }

    async fn run_once(&self) -> Result<(), deferral::store::StoreError> {
        self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut unfinished = Unfinished(self.cut.clone(), false);
        tokio::time::sleep(self.takes).await;
        unfinished.1 = true;
        Ok(())
    }
}

#[tokio::test]
async fn a_leader_only_service_runs_once_when_elected_and_is_cut_short_when_the_lead_is_lost() {
    if !support::on_postgres() {
        return;
    }
    let (leader, _follower, url) = two_processes().await;
    let counted = |takes| {
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let service = Counted {
            runs: runs.clone(),
            cut: cut.clone(),
            takes,
        };
        (service, runs, cut)
    };
    let stop = CancellationToken::new();
    // Renewals are no new election: a quick service of the hour runs once through several.
    let (quick, runs, _) = counted(Duration::from_millis(10));
    let quick = maintenance::spawn(quick, Duty::Leader(leader.clone()), stop.clone());
    tokio::time::sleep(EVERY * 5).await;
    assert_eq!(
        runs.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "ran again at a renewal"
    );

    // A long run of the leader's...
    let (long, runs, cut) = counted(Duration::from_secs(30));
    let task = maintenance::spawn(long, Duty::Leader(leader.clone()), stop.clone());
    wait_for("the long run", SLACK, || {
        runs.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    // Another candidate holds the lead now: the run stops at the leader's next try.
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("UPDATE leader SET owner = 'intruder', expires_at = expires_at + 600000")
        .execute(&db)
        .await
        .unwrap();
    let took = wait_for("the run cut short", EVERY + SLACK, || {
        cut.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    assert!(!leader.is_leader(), "still leads after {took:?}");
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    stop.cancel();
    task.await.unwrap();
    quick.await.unwrap();
}
