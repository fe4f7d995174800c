//! PostgreSQL stops and starts again under a running Deferral process: while the database is
//! unreachable the webhook answers 503 and /healthz 503, the executor backs off, the process
//! stays up; once it is back, ingest and the executor resume and nothing acknowledged is lost.
//!
//! It stops the PostgreSQL server itself, so it would break every test running against the
//! same server at that moment: it only runs when asked, alone and after the rest of the suite:
//!
//! DEFERRAL_TEST_BACKEND=postgres DEFERRAL_TEST_PG_RESTART=1 cargo test --test postgres_resilience
//!
//! The cluster is `DEFERRAL_TEST_PG_CLUSTER` ("15 main"), by default the only version under
//! /etc/postgresql and `main`; it must be the server `DEFERRAL_TEST_POSTGRES` points at.

mod processes;
mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

const BEFORE: usize = 200;
const DURING: usize = 300;
const SENDERS: usize = 8;

fn pg_ctlcluster(action: &str) -> std::process::ExitStatus {
    processes::pg_ctlcluster(&[action])
}

/// Starts the server again however the test ends: the rest of the machine needs it.
struct ServerBack;

impl Drop for ServerBack {
    fn drop(&mut self) {
        let _ = pg_ctlcluster("start");
    }
}

async fn healthz(client: &reqwest::Client, url: &str) -> Option<u16> {
    Some(
        client
            .get(format!("{url}/healthz"))
            .send()
            .await
            .ok()?
            .status()
            .as_u16(),
    )
}

fn event(id: &str, object: &str, created: i64) -> String {
    support::event(id, "test.resilience", object, created)
}

#[derive(Default)]
struct Seen {
    acked: HashMap<String, String>,
    unavailable: usize,
    transport_errors: usize,
}

/// Delivers each body until acknowledged, retrying 5xx and refusals as Stripe does.
async fn deliver_all(client: reqwest::Client, url: String, bodies: Vec<(String, String)>, seen: Arc<Mutex<Seen>>) {
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..SENDERS {
        let (client, url, bodies, next, seen) =
            (client.clone(), url.clone(), bodies.clone(), next.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            while let Some((id, body)) = bodies.get(next.fetch_add(1, Ordering::SeqCst)) {
                let deadline = Instant::now() + Duration::from_secs(90);
                loop {
                    assert!(Instant::now() < deadline, "{id} never acknowledged");
                    match processes::deliver(&client, &url, body).await {
                        Ok((200, json)) => {
                            let exe = json["execution_id"].as_str().expect("execution_id").to_string();
                            seen.lock().await.acked.insert(id.clone(), exe);
                            break;
                        }
                        Ok((503, json)) => {
                            assert_eq!(json["error"], "unavailable", "{json}");
                            seen.lock().await.unavailable += 1;
                        }
                        Ok((status, json)) => panic!("{id}: {status} {json}"),
                        Err(_) => seen.lock().await.transport_errors += 1,
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                // Paced, so deliveries keep arriving before, during and after the outage.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_loses_nothing_and_the_process_stays_up() {
    if !processes::restarts_allowed() {
        eprintln!(
            "skipped: stops the PostgreSQL server; run alone with \
             DEFERRAL_TEST_BACKEND=postgres DEFERRAL_TEST_PG_RESTART=1 cargo test --test postgres_resilience"
        );
        return;
    }
    let began = Instant::now();
    let (url, dir) = support::fresh_database().await;
    let env = [
        ("DEFERRAL_LEASE", "2s"),
        ("DEFERRAL_POLL_INTERVAL", "200ms"),
        // Events created now run 6 s later: during the outage.
        ("DEFERRAL_PROCESS_DELAY", "6s"),
        ("DEFERRAL_RETRY_INITIAL_INTERVAL", "200ms"),
        ("DEFERRAL_RETRY_MAX_INTERVAL", "1s"),
    ];
    let mut procs = processes::start(1, &url, dir.path(), &env).await;
    let app = procs[0].url.clone();
    let db = processes::connect(&url).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let now = chrono::Utc::now().timestamp();

    // Before: half due at once (run before the outage), half due during it.
    let before: Vec<(String, String)> = (0..BEFORE)
        .map(|i| {
            let id = format!("evt_before_{i}");
            let created = if i % 2 == 0 { now - 3600 } else { now };
            let body = event(&id, &format!("cus_r{}", i % 50), created + (i / 50) as i64);
            (id, body)
        })
        .collect();
    let seen = Arc::new(Mutex::new(Seen::default()));
    deliver_all(client.clone(), app.clone(), before, seen.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (done,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM executions WHERE state = 'succeeded'")
            .fetch_one(&db)
            .await
            .unwrap();
        if done as usize >= BEFORE / 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} executions ran before the outage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    db.close().await;

    // During: deliveries keep coming, retried like Stripe's, across the outage.
    let during: Vec<(String, String)> = (0..DURING)
        .map(|i| {
            let id = format!("evt_during_{i}");
            let body = event(&id, &format!("cus_r{}", i % 50), now - 3600 + 100 + i as i64);
            (id, body)
        })
        .collect();
    let sender = tokio::spawn(deliver_all(client.clone(), app.clone(), during, seen.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let _back = ServerBack;
    assert!(pg_ctlcluster("stop").success(), "pg_ctlcluster stop");
    let stopped = Instant::now();
    eprintln!("PostgreSQL stopped after {:?}", began.elapsed());

    // Unreachable: the webhook answers 503 (Stripe retries), health says so, the process lives.
    let probe_body = event("evt_probe", "cus_probe", now - 3600);
    let asked = Instant::now();
    let (status, json) = processes::deliver(&client, &app, &probe_body)
        .await
        .expect("the process answers");
    assert_eq!(status, 503, "{json}");
    assert_eq!(json["error"], "unavailable", "{json}");
    let webhook_503 = asked.elapsed();
    let asked = Instant::now();
    assert_eq!(healthz(&client, &app).await, Some(503));
    eprintln!(
        "while down: webhook 503 in {webhook_503:?}, /healthz 503 in {:?}",
        asked.elapsed()
    );
    assert!(
        procs[0].alive(),
        "exited without its database:\n{}",
        procs[0].log_text()
    );
    // Long enough for leases (2 s) to lapse and the delayed executions to fall due.
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(stopped.elapsed())).await;
    assert!(
        procs[0].alive(),
        "exited without its database:\n{}",
        procs[0].log_text()
    );

    assert!(pg_ctlcluster("start").success(), "pg_ctlcluster start");
    let restarted = Instant::now();
    eprintln!("PostgreSQL started again after {:?} down", stopped.elapsed());
    let deadline = Instant::now() + Duration::from_secs(30);
    while healthz(&client, &app).await != Some(200) {
        assert!(Instant::now() < deadline, "/healthz not 200 within 30 s of the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("healthy again {:?} after the start", restarted.elapsed());

    // Stripe retries the refused delivery: now it is stored.
    let (status, json) = processes::deliver(&client, &app, &probe_body)
        .await
        .expect("the process answers");
    assert_eq!(status, 200, "{json}");
    seen.lock()
        .await
        .acked
        .insert("evt_probe".into(), json["execution_id"].as_str().unwrap().to_string());
    sender.await.expect("senders");

    // Everything acknowledged runs to success, once.
    let db = processes::connect(&url).await;
    processes::wait_until_all_finished(&db, Duration::from_secs(60)).await;
    let seen = seen.lock().await;
    let rows: Vec<(String, String, String)> = sqlx::query_as("SELECT event_id, id, state FROM executions")
        .fetch_all(&db)
        .await
        .unwrap();
    let stored: HashMap<&str, (&str, &str)> = rows
        .iter()
        .map(|(ev, id, state)| (ev.as_str(), (id.as_str(), state.as_str())))
        .collect();
    assert_eq!(rows.len(), stored.len(), "an event has two executions");
    assert_eq!(seen.acked.len(), BEFORE + DURING + 1);
    let acked: HashSet<&str> = seen.acked.keys().map(String::as_str).collect();
    let in_db: HashSet<&str> = stored.keys().copied().collect();
    assert_eq!(acked, in_db, "acknowledged and stored events differ");
    for (event_id, execution_id) in &seen.acked {
        let (id, state) = stored[event_id.as_str()];
        assert_eq!(id, execution_id, "{event_id}: answered {execution_id}, stored {id}");
        assert_eq!(state, "succeeded", "{event_id}");
    }

    let log = procs[0].log_text();
    let claim_failures = log.matches("cannot claim executions").count();
    assert!(claim_failures > 0, "the executor never noticed the outage:\n{log}");
    // Backing off: a handful of tries over the outage, not a busy loop.
    assert!(claim_failures < 50, "{claim_failures} claim failures: no back-off");
    assert!(seen.unavailable > 0, "no delivery met the outage");
    assert!(procs[0].alive(), "{log}");
    eprintln!(
        "ok in {:?}: {} events, {} answered 503 during the outage, {} transport errors, {claim_failures} claim retries",
        began.elapsed(),
        seen.acked.len(),
        seen.unavailable,
        seen.transport_errors
    );
}
