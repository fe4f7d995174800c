//! Several PostgreSQL processes with the sweep on: one sweeps at a time and no event is stored
//! twice, also when the lead changes hands mid-sweep: the leader is frozen (SIGSTOP) while it
//! lists, another process takes the lead once its lease runs out and sweeps, and the old
//! leader, thawed, must not list another page beside it: it counts its lease down on its own
//! clock, so it knows it lost the lead before any page, and records its sweep as interrupted.

use std::time::{Duration, Instant};

use super::fake_stripe::{FakeStripe, KEY};
use super::{WAIT, fake_listing, listed, processes, support};

/// Two processes on a fresh database sweeping from `fake`, with `env` besides the key; `None`
/// off PostgreSQL (the test is skipped).
async fn sweeping_processes(
    fake: &FakeStripe,
    env: &[(&str, &str)],
) -> Option<(Vec<processes::Process>, sqlx::PgPool, tempfile::TempDir)> {
    if support::backend() != "postgres" {
        eprintln!("skipped: several processes need PostgreSQL; runs with DEFERRAL_TEST_BACKEND=postgres");
        return None;
    }
    let (database_url, dir) = support::fresh_database().await;
    let mut all = vec![
        ("STRIPE_SECRET_KEY", KEY),
        ("STRIPE_API_BASE", fake.url.as_str()),
        ("DEFERRAL_POLL_INTERVAL", "50ms"),
    ];
    all.extend_from_slice(env);
    let procs = processes::start(2, &database_url, dir.path(), &all).await;
    let db = processes::connect(&database_url).await;
    Some((procs, db, dir))
}

/// How many events are stored.
async fn stored(db: &sqlx::PgPool) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events")
        .fetch_one(db)
        .await
        .unwrap();
    n
}

/// Asserts that no event has two executions.
async fn each_event_once(db: &sqlx::PgPool) {
    let (twice,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM (SELECT event_id FROM executions GROUP BY event_id HAVING COUNT(*) > 1) AS d",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(twice, 0, "an event stored twice");
}

/// One sweep row as the test reads it.
type Row = (String, i64, Option<i64>, Option<String>);

async fn sweeps(db: &sqlx::PgPool) -> Vec<Row> {
    sqlx::query_as("SELECT owner, pages, finished_at, error FROM reconcile_sweeps ORDER BY started_at")
        .fetch_all(db)
        .await
        .unwrap()
}

/// Waits until a sweep not by `other_than` has listed at least `pages` pages and is still
/// running; returns its owner.
async fn sweeping(db: &sqlx::PgPool, pages: i64, other_than: Option<&str>) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let rows = sweeps(db).await;
        if let Some((owner, ..)) = rows
            .iter()
            .find(|(owner, p, finished, _)| *p >= pages && finished.is_none() && Some(owner.as_str()) != other_than)
        {
            return owner.clone();
        }
        assert!(Instant::now() < deadline, "no sweep {pages} pages in: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn two_postgres_processes_sweep_one_at_a_time_and_store_each_event_once() {
    // Slow pages widen each sweep, so two at once would show.
    let fake = fake_listing(250, Duration::from_millis(60)).await;
    let Some((mut procs, db, _dir)) = sweeping_processes(&fake, &[("DEFERRAL_RECONCILE_INTERVAL", "400ms")]).await
    else {
        return;
    };
    // More events appear while they sweep.
    for n in 250..300 {
        fake.add_event(&listed(n, 30).1, false);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let stored = stored(&db).await;
        if stored == 300 {
            break;
        }
        assert!(Instant::now() < deadline, "{stored} of 300 events stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // a few more sweeps
    for p in &mut procs {
        assert!(p.alive(), "{} exited", p.name);
    }
    each_event_once(&db).await;
    let (executions,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM executions WHERE origin = 'reconciled'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(executions, 300);
    let sweeps: Vec<(i64, Option<i64>, String)> =
        sqlx::query_as("SELECT started_at, finished_at, owner FROM reconcile_sweeps ORDER BY started_at")
            .fetch_all(&db)
            .await
            .unwrap();
    assert!(sweeps.len() >= 3, "{sweeps:?}");
    for pair in sweeps.windows(2) {
        let finished = pair[0].1.expect("every sweep but the running one finished");
        assert!(finished <= pair[1].0, "two sweeps at once: {pair:?}");
    }
    assert_eq!(fake.most_lists_at_once(), 1, "two processes listed at the same time");
    for p in &procs {
        // sqlx's "slow statement" is the machine's load (two processes migrating at once), not a problem.
        let problems: Vec<String> = p
            .problems()
            .into_iter()
            .filter(|l| !l.contains("slow statement"))
            .collect();
        assert!(problems.is_empty(), "{}: {problems:?}", p.name);
    }
}

#[tokio::test]
async fn a_leader_frozen_mid_sweep_lists_no_more_once_another_leads() {
    // Twelve slow pages: a sweep lasts about five seconds, long enough to change hands in.
    let fake = fake_listing(1200, Duration::from_millis(400)).await;
    // The election every 500 ms, so a lease of 1.5 s.
    let env = [("DEFERRAL_RECONCILE_INTERVAL", "1s"), ("DEFERRAL_LEASE", "1s")];
    let Some((mut procs, db, _dir)) = sweeping_processes(&fake, &env).await else {
        return;
    };

    let old = sweeping(&db, 2, None).await;
    let frozen = procs
        .iter()
        .position(|p| old.starts_with(&format!("{}-", p.name)))
        .expect("the sweeping process");
    procs[frozen].signal("STOP");
    // The other process leads once the lease has run out, and sweeps.
    let new = sweeping(&db, 1, Some(&old)).await;
    procs[frozen].signal("CONT");

    let deadline = Instant::now() + WAIT;
    loop {
        let stored = stored(&db).await;
        let rows = sweeps(&db).await;
        let old_ended = rows.iter().any(|(o, _, f, _)| *o == old && f.is_some());
        if stored == 1200 && old_ended {
            break;
        }
        assert!(Instant::now() < deadline, "{stored} of 1200 events stored: {rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fake.most_lists_at_once(), 1, "the old leader listed beside the new one");
    each_event_once(&db).await;
    let rows = sweeps(&db).await;
    let (_, _, _, error) = rows.iter().find(|(o, ..)| *o == old).unwrap();
    assert_eq!(
        error.as_deref(),
        Some("interrupted: this process no longer leads; the new leader sweeps next"),
        "{rows:?}"
    );
    assert!(rows.iter().any(|(o, ..)| *o == new), "{rows:?}");
    for p in &mut procs {
        assert!(p.alive(), "{} exited", p.name);
    }
}
