//! Three real Deferral processes on one PostgreSQL database: 5,000 signed events (plus 10%
//! duplicate deliveries, shuffled) sent across all three, one process killed with SIGKILL
//! mid-run and not restarted. Every event ends with exactly one execution, every execution
//! succeeds, no execution runs two attempts at once, one Stripe object runs one execution
//! at a time in the order of its events, and the per-type limit holds across processes.
//!
//! PostgreSQL only, so ignored in the suite's passes; `make test` runs it once on PostgreSQL:
//! `DEFERRAL_TEST_BACKEND=postgres cargo test --test multiprocess -- --ignored`.

mod processes;
mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::sync::Mutex;

use processes::now_ms;

const OBJECTS: usize = 1000;
const EVENTS_PER_OBJECT: usize = 5;
const DUPLICATES: usize = 500;
const SENDERS: usize = 24;
const LIMITED_TYPE: &str = "test.limited";
const TYPE_LIMIT: usize = 2;
const VICTIM: usize = 1;

struct Planned {
    id: String,
    object: String,
    created: i64,
    body: String,
}

/// What the senders saw: for each event id, when it was first acknowledged and the
/// execution ids the processes answered with.
#[derive(Default)]
struct Acks {
    first_ack_ms: HashMap<String, i64>,
    execution_ids: HashMap<String, HashSet<String>>,
    server_errors: Vec<String>,
    transport_errors: usize,
}

#[derive(sqlx::FromRow, Debug)]
struct Exec {
    id: String,
    event_id: String,
    event_type: String,
    event_created: i64,
    object_id: Option<String>,
    seq: i64,
    state: String,
    attempts: i64,
}

#[derive(sqlx::FromRow, Debug, Clone)]
struct Att {
    execution_id: String,
    number: i64,
    started_at: i64,
    finished_at: i64,
    outcome: String,
    worker: Option<String>,
}

fn plan(rng: &mut impl Rng) -> (Vec<Planned>, Vec<usize>) {
    let base = chrono::Utc::now().timestamp() - 3600;
    let mut events = Vec::with_capacity(OBJECTS * EVENTS_PER_OBJECT);
    let mut keys = Vec::new();
    for k in 0..OBJECTS {
        let object = format!("cus_mp{k:04}");
        // Distinct `created` per object, not in id order, so arrival order and event order differ.
        let mut offsets: Vec<i64> = (0..EVENTS_PER_OBJECT as i64).map(|j| j * 7).collect();
        offsets.shuffle(rng);
        for (j, offset) in offsets.into_iter().enumerate() {
            let id = format!("evt_mp{k:04}_{j}");
            let ty = if rng.gen_bool(0.2) {
                LIMITED_TYPE
            } else {
                "test.multiprocess"
            };
            let created = base + offset;
            let body = support::event(&id, ty, &object, created);
            // One object's events arrive close together but shuffled, so they race each other.
            keys.push((
                k as f64 * EVENTS_PER_OBJECT as f64 + rng.gen_range(0.0..40.0),
                events.len(),
            ));
            events.push(Planned {
                id,
                object: object.clone(),
                created,
                body,
            });
        }
    }
    for _ in 0..DUPLICATES {
        let (key, i) = keys[rng.gen_range(0..events.len())];
        keys.push((key + rng.gen_range(0.0..200.0), i));
    }
    keys.sort_by(|a, b| a.0.total_cmp(&b.0));
    (events, keys.into_iter().map(|(_, i)| i).collect())
}

/// Sends every delivery, each to the next live process, retrying refusals and 5xx elsewhere
/// as Stripe (and a load balancer) would, until each is acknowledged with 200.
async fn send_all(
    events: Arc<Vec<Planned>>,
    order: Arc<Vec<usize>>,
    urls: Arc<Vec<String>>,
    dead: Arc<Vec<AtomicBool>>,
    acked: Arc<AtomicUsize>,
) -> Acks {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let acks = Arc::new(Mutex::new(Acks::default()));
    let mut tasks = Vec::new();
    for _ in 0..SENDERS {
        let (events, order, urls, dead, acked, next, acks, client) = (
            events.clone(),
            order.clone(),
            urls.clone(),
            dead.clone(),
            acked.clone(),
            next.clone(),
            acks.clone(),
            client.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = order.get(n) else { return };
                let event = &events[i];
                let mut target = n;
                for tries in 0.. {
                    assert!(tries < 100, "{} was never acknowledged", event.id);
                    target = (target + 1) % urls.len();
                    if dead[target].load(Ordering::SeqCst) {
                        continue;
                    }
                    match processes::deliver(&client, &urls[target], &event.body).await {
                        Ok((200, json)) => {
                            let at = now_ms();
                            let mut a = acks.lock().await;
                            let first = a.first_ack_ms.entry(event.id.clone()).or_insert(at);
                            *first = (*first).min(at);
                            let exe = json["execution_id"].as_str().expect("execution_id").to_string();
                            a.execution_ids.entry(event.id.clone()).or_default().insert(exe);
                            acked.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        Ok((status, json)) => {
                            assert!(status >= 500, "{} refused with {status}: {json}", event.id);
                            acks.lock()
                                .await
                                .server_errors
                                .push(format!("{target}: {status} {json}"));
                        }
                        Err(_) => acks.lock().await.transport_errors += 1,
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender");
    }
    Arc::try_unwrap(acks).ok().expect("senders done").into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "PostgreSQL only: `make test` runs it once, after its PostgreSQL pass, with --ignored"]
async fn three_processes_share_one_database_and_survive_a_sigkill() {
    assert_eq!(
        support::backend(),
        "postgres",
        "several processes share a database on PostgreSQL only: run with DEFERRAL_TEST_BACKEND=postgres"
    );
    let began = Instant::now();
    let seed: u64 = std::env::var("DEFERRAL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("seed {seed} (DEFERRAL_TEST_SEED reproduces the plan)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (events, order) = plan(&mut rng);

    let (url, dir) = support::fresh_database().await;
    let limit = format!("{LIMITED_TYPE}={TYPE_LIMIT}");
    let env = [
        // Short lease: the killed process's executions are rescued within seconds.
        ("DEFERRAL_LEASE", "2s"),
        ("DEFERRAL_POLL_INTERVAL", "200ms"),
        ("DEFERRAL_WORKERS", "8"),
        ("DEFERRAL_TYPE_CONCURRENCY", limit.as_str()),
    ];
    // All three start at once on the empty database: they migrate it together.
    let mut procs = processes::start(3, &url, dir.path(), &env).await;
    let db = processes::connect(&url).await;

    let urls: Arc<Vec<String>> = Arc::new(procs.iter().map(|p| p.url.clone()).collect());
    let dead: Arc<Vec<AtomicBool>> = Arc::new((0..procs.len()).map(|_| AtomicBool::new(false)).collect());
    let acked = Arc::new(AtomicUsize::new(0));
    let events = Arc::new(events);
    let total = order.len();
    let sender = tokio::spawn(send_all(
        events.clone(),
        Arc::new(order),
        urls,
        dead.clone(),
        acked.clone(),
    ));

    // Mid-run, once the victim holds leases: SIGKILL, never restarted.
    while acked.load(Ordering::SeqCst) < total / 3 {
        assert!(!sender.is_finished(), "senders stopped early");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Freeze the victim (SIGSTOP) and kill it only once it holds leases; with no-op jobs, its
    // attempts are otherwise too short to be caught running. What it holds then is what it loses.
    let victim_owner = format!("{}-{}-%", procs[VICTIM].name, procs[VICTIM].pid());
    let deadline = Instant::now() + Duration::from_secs(20);
    let held: Vec<String> = loop {
        procs[VICTIM].signal("STOP");
        // Let statements the server already received finish.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let held: Vec<String> =
            sqlx::query_scalar("SELECT id FROM executions WHERE state = 'running' AND lease_owner LIKE $1")
                .bind(&victim_owner)
                .fetch_all(&db)
                .await
                .unwrap();
        if !held.is_empty() {
            break held;
        }
        procs[VICTIM].signal("CONT");
        assert!(Instant::now() < deadline, "the victim never held a lease");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    procs[VICTIM].kill();
    let killed_at = now_ms();
    dead[VICTIM].store(true, Ordering::SeqCst);
    eprintln!(
        "killed {} holding {} leases after {} acknowledged deliveries",
        procs[VICTIM].name,
        held.len(),
        acked.load(Ordering::SeqCst)
    );

    let acks = sender.await.expect("senders");
    eprintln!(
        "sent {total} deliveries in {:?}; {} transport errors, {} server errors",
        began.elapsed(),
        acks.transport_errors,
        acks.server_errors.len()
    );

    // Wait for the survivors to finish everything, the rescued executions included.
    processes::wait_until_all_finished(&db, Duration::from_secs(90)).await;
    for (i, p) in procs.iter_mut().enumerate() {
        if i != VICTIM {
            assert!(p.alive(), "{} exited:\n{}", p.name, p.log_text());
        }
    }
    eprintln!("all executions finished after {:?}", began.elapsed());

    let execs: Vec<Exec> = sqlx::query_as(
        "SELECT id, event_id, event_type, event_created, object_id, seq, state, attempts FROM executions",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let attempts: Vec<Att> =
        sqlx::query_as("SELECT execution_id, number, started_at, finished_at, outcome, worker FROM attempts")
            .fetch_all(&db)
            .await
            .unwrap();
    let (stored_events,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events")
        .fetch_one(&db)
        .await
        .unwrap();

    // Every event: acknowledged, stored once, exactly one execution, the same id from every process.
    assert_eq!(stored_events as usize, events.len());
    assert_eq!(execs.len(), events.len(), "one execution per event");
    let by_event: HashMap<&str, &Exec> = execs.iter().map(|e| (e.event_id.as_str(), e)).collect();
    for e in events.iter() {
        let exec = by_event
            .get(e.id.as_str())
            .unwrap_or_else(|| panic!("no execution for {}", e.id));
        let answered = &acks.execution_ids[&e.id];
        assert_eq!(
            answered.len(),
            1,
            "{}: different executions answered: {answered:?}",
            e.id
        );
        assert!(
            answered.contains(&exec.id),
            "{}: answered {answered:?}, stored {}",
            e.id,
            exec.id
        );
        assert_eq!(exec.object_id.as_deref(), Some(e.object.as_str()));
        assert_eq!(exec.event_created, e.created);
    }
    let failed: Vec<&Exec> = execs.iter().filter(|e| e.state != "succeeded").collect();
    assert!(
        failed.is_empty(),
        "{} executions did not succeed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );

    // Each execution's attempts: numbered 1..n, one after the other, the last one succeeded,
    // the earlier ones lost with the killed process.
    let mut by_exec: HashMap<&str, Vec<&Att>> = HashMap::new();
    for a in &attempts {
        by_exec.entry(a.execution_id.as_str()).or_default().push(a);
    }
    let by_exec_all = by_exec.clone();
    let starts: HashMap<&str, Vec<i64>> = by_exec
        .iter()
        .map(|(id, list)| (*id, list.iter().map(|a| a.started_at).collect()))
        .collect();
    let victim_prefix = format!("{}-{}-", procs[VICTIM].name, procs[VICTIM].pid());
    let mut lost = 0;
    for e in &execs {
        let mut list = by_exec.remove(e.id.as_str()).unwrap_or_default();
        list.sort_by_key(|a| a.number);
        let numbers: Vec<i64> = list.iter().map(|a| a.number).collect();
        assert_eq!(
            numbers,
            (1..=e.attempts).collect::<Vec<_>>(),
            "{}: attempts {list:?}",
            e.id
        );
        for pair in list.windows(2) {
            assert!(
                pair[0].finished_at <= pair[1].started_at,
                "{}: two attempts at once: {pair:?}",
                e.id
            );
        }
        let (last, earlier) = list.split_last().expect("at least one attempt");
        assert_eq!(last.outcome, "succeeded", "{}: {list:?}", e.id);
        for a in earlier {
            assert_eq!(a.outcome, "lost", "{}: {list:?}", e.id);
            let worker = a.worker.as_deref().unwrap_or("");
            assert!(
                worker.starts_with(&victim_prefix),
                "{}: lost by {worker}, not the killed process",
                e.id
            );
            assert!(a.finished_at >= killed_at, "{}: rescued before the kill: {a:?}", e.id);
            lost += 1;
        }
        if let Some(w) = last.worker.as_deref().filter(|w| w.starts_with(&victim_prefix)) {
            assert!(
                last.finished_at <= killed_at,
                "{}: {w} finished after it was killed: {last:?}",
                e.id
            );
        }
    }
    for id in &held {
        let list = &by_exec_all[id.as_str()];
        assert!(
            list.iter()
                .any(|a| a.outcome == "lost" && a.worker.as_deref().is_some_and(|w| w.starts_with(&victim_prefix))),
            "{id} was held by the killed process but never rescued: {list:?}"
        );
    }
    assert!(lost >= held.len());

    // One object, one attempt at a time: every attempt of an object's executions (lost ones
    // included: they held the lease until rescued) ends before the next one starts.
    let exec_by_id: HashMap<&str, &Exec> = execs.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut by_object: HashMap<&str, Vec<&Att>> = HashMap::new();
    for a in &attempts {
        let object = exec_by_id[a.execution_id.as_str()].object_id.as_deref().unwrap();
        by_object.entry(object).or_default().push(a);
    }
    for (object, list) in &mut by_object {
        list.sort_by_key(|a| (a.started_at, a.finished_at));
        for pair in list.windows(2) {
            assert!(
                pair[0].finished_at <= pair[1].started_at,
                "{object}: overlapping attempts {pair:?}"
            );
        }
    }

    // Event order per object: once an event was acknowledged, no later event (by `created`,
    // then arrival) of its object may start before it succeeded. Earlier events that arrive
    // after a later one already ran cannot be ordered and are not counted.
    let success: HashMap<&str, &Att> = attempts
        .iter()
        .filter(|a| a.outcome == "succeeded")
        .map(|a| (a.execution_id.as_str(), a))
        .collect();
    let mut per_object: HashMap<&str, Vec<&Exec>> = HashMap::new();
    for e in &execs {
        per_object.entry(e.object_id.as_deref().unwrap()).or_default().push(e);
    }
    let mut checked_pairs = 0;
    for (object, list) in &mut per_object {
        list.sort_by_key(|e| (e.event_created, e.seq));
        for (i, earlier) in list.iter().enumerate() {
            let acked_at = acks.first_ack_ms[&earlier.event_id];
            let done = success[earlier.id.as_str()];
            for later in &list[i + 1..] {
                let first = starts[later.id.as_str()]
                    .iter()
                    .copied()
                    .filter(|&s| s > acked_at)
                    .min();
                if let Some(first) = first {
                    checked_pairs += 1;
                    assert!(
                        done.finished_at <= first,
                        "{object}: {} (created {}) started at {first}, before {} (created {}, acknowledged at {acked_at}) \
                         succeeded at {}",
                        later.event_id,
                        later.event_created,
                        earlier.event_id,
                        earlier.event_created,
                        done.finished_at
                    );
                }
            }
        }
    }
    // The ordering check must have had something to check.
    assert!(
        checked_pairs > OBJECTS,
        "only {checked_pairs} ordered pairs could be checked"
    );

    // Per-type limit across the three processes: never more than TYPE_LIMIT attempts of the
    // limited type at one moment.
    let mut edges: Vec<(i64, i32)> = attempts
        .iter()
        .filter(|a| exec_by_id[a.execution_id.as_str()].event_type == LIMITED_TYPE)
        .flat_map(|a| [(a.started_at, 1), (a.finished_at, -1)])
        .collect();
    edges.sort(); // at equal times the end (-1) sorts first: back-to-back attempts do not overlap
    let (mut now_running, mut peak) = (0, 0);
    for (_, d) in edges {
        now_running += d;
        peak = peak.max(now_running);
    }
    assert!(
        peak <= TYPE_LIMIT as i32,
        "{peak} attempts of {LIMITED_TYPE} ran at once (limit {TYPE_LIMIT})"
    );

    for p in procs.iter().filter(|p| p.name != procs[VICTIM].name) {
        let problems = p.problems();
        eprintln!(
            "{}: {} warnings/errors{}",
            p.name,
            problems.len(),
            problems.iter().take(5).map(|l| format!("\n  {l}")).collect::<String>()
        );
        // Lock waits between processes are resolved by lock order and SKIP LOCKED, never by the deadlock detector.
        assert!(!problems.iter().any(|l| l.contains("deadlock")), "{}: deadlock", p.name);
    }

    let mut share: HashMap<String, usize> = HashMap::new();
    for a in &attempts {
        let w = a.worker.clone().unwrap_or_default();
        *share
            .entry(w.split('-').take(2).collect::<Vec<_>>().join("-"))
            .or_default() += 1;
    }
    eprintln!(
        "ok in {:?}: {} executions, {lost} rescued, {checked_pairs} ordered pairs checked, \
         {LIMITED_TYPE} peak {peak}, attempts per process {share:?}",
        began.elapsed(),
        execs.len()
    );
    drop(procs);
}
