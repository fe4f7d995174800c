//! The lead changing hands mid-sweep on PostgreSQL: the leader is frozen (SIGSTOP) while it
//! lists, another process takes the lead once its lease runs out and sweeps, and the old
//! leader, thawed, must not list another page beside it: it counts its lease down on its own
//! clock, so it knows it lost the lead before any page, and records its sweep as interrupted.

use std::time::{Duration, Instant};

use super::fake_stripe::{FakeStripe, KEY};
use super::{WAIT, listed, processes, support};

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
async fn a_leader_frozen_mid_sweep_lists_no_more_once_another_leads() {
    if support::backend() != "postgres" {
        eprintln!("skipped: several processes need PostgreSQL; runs with DEFERRAL_TEST_BACKEND=postgres");
        return;
    }
    let fake = FakeStripe::start().await;
    // Twelve slow pages: a sweep lasts about five seconds, long enough to change hands in.
    fake.slow_list(Duration::from_millis(400));
    for n in 0..1200 {
        fake.add_event(&listed(n, 7200 - n as i64).1, false);
    }
    let (database_url, dir) = support::fresh_database().await;
    let env = [
        ("STRIPE_SECRET_KEY", KEY),
        ("STRIPE_API_BASE", fake.url.as_str()),
        ("DEFERRAL_RECONCILE_INTERVAL", "1s"),
        // The election every 500 ms, so a lease of 1.5 s.
        ("DEFERRAL_LEASE", "1s"),
        ("DEFERRAL_POLL_INTERVAL", "50ms"),
    ];
    let mut procs = processes::start(2, &database_url, dir.path(), &env).await;
    let db = processes::connect(&database_url).await;

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
        let (stored,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events")
            .fetch_one(&db)
            .await
            .unwrap();
        let rows = sweeps(&db).await;
        let old_ended = rows.iter().any(|(o, _, f, _)| *o == old && f.is_some());
        if stored == 1200 && old_ended {
            break;
        }
        assert!(Instant::now() < deadline, "{stored} of 1200 events stored: {rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fake.most_lists_at_once(), 1, "the old leader listed beside the new one");
    let (twice,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM (SELECT event_id FROM executions GROUP BY event_id HAVING COUNT(*) > 1) AS d",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(twice, 0, "an event stored twice");
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
