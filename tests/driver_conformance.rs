//! One suite every driver passes: the same checks against SQLite always and PostgreSQL when it
//! is reachable (`DEFERRAL_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432`), in one
//! invocation. A new backend's driver is done when it passes these.
//!
//! The Makefile runs the workspace's tests once per backend; this suite checks both drivers in
//! the first pass and is skipped in the second (`--skip every_driver::`).

mod support;

use std::time::Duration;

use deferral::store::{Claimed, Completion, Finish, NewEvent, Store, now_ms};
use domain::model::{Action, Origin, State};

/// The drivers to check: SQLite, and PostgreSQL unless it cannot be reached.
async fn backends() -> Vec<&'static str> {
    let mut out = vec!["sqlite"];
    let server =
        std::env::var("DEFERRAL_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let reachable = tokio::time::timeout(
        Duration::from_secs(3),
        sqlx::PgPool::connect(&format!("{server}/postgres")),
    )
    .await
    .is_ok_and(|pool| pool.is_ok());
    if reachable {
        out.push("postgres");
    } else {
        eprintln!("PostgreSQL not reachable at {server}: only the SQLite driver is checked");
    }
    out
}

/// Runs `check` against a fresh database on each driver, naming the driver on failure.
macro_rules! conformance {
    ($name:ident, $check:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for backend in backends().await {
                let (url, _dir) = support::fresh_database_on(backend).await;
                let store = Store::open(&url)
                    .await
                    .unwrap_or_else(|e| panic!("{backend}: {e}"));
                assert_eq!(store.backend(), backend);
                $check(&store, backend).await;
                store.close().await;
            }
        }
    };
}

fn event(id: &str, event_type: &str, object: &str, created: i64) -> NewEvent {
    NewEvent {
        id: id.into(),
        event_type: event_type.into(),
        created,
        livemode: false,
        api_version: Some("2025-03-31.basil".into()),
        account: None,
        object_id: Some(object.into()),
        object_type: Some("invoice".into()),
        payload: format!(r#"{{"id":"{id}","object":"event","type":"{event_type}","created":{created}}}"#),
        run_at: now_ms() - 1,
        discard_at: None,
        max_attempts: 3,
        origin: Origin::Webhook,
    }
}

fn done(c: &Claimed, finish: Finish) -> Completion {
    let now = now_ms();
    Completion {
        execution_id: c.row.id.clone(),
        attempt: c.row.attempts,
        started_at: now,
        finished_at: now,
        duration_us: 1,
        finish,
    }
}

fn succeeded() -> Finish {
    Finish::Succeeded {
        result: "ok".into(),
        source: None,
    }
}

fn ids(claimed: &[Claimed]) -> Vec<&str> {
    claimed.iter().map(|c| c.row.event_id.as_str()).collect()
}

/// The checks, named `every_driver::…` so that the PostgreSQL pass can skip them.
mod every_driver {
    use super::*;

    conformance!(
        ingest_creates_one_execution_per_event_id,
        |store: &Store, backend: &str| {
            let store = store.clone();
            let backend = backend.to_string();
            async move {
                let first = store
                    .ingest(&[
                        event("evt_1", "invoice.paid", "in_1", 1),
                        event("evt_1", "invoice.paid", "in_1", 1),
                    ])
                    .await
                    .unwrap();
                assert!(!first[0].duplicate && first[1].duplicate, "{backend}: {first:?}");
                assert_eq!(first[0].execution_id, first[1].execution_id, "{backend}");
                let again = store
                    .ingest(&[event("evt_1", "invoice.paid", "in_1", 1)])
                    .await
                    .unwrap();
                assert!(again[0].duplicate, "{backend}");
                assert_eq!(again[0].execution_id, first[0].execution_id, "{backend}");
            }
        }
    );

    conformance!(
        claims_take_one_execution_per_object_in_created_order,
        |store: &Store, backend: &str| {
            let store = store.clone();
            let backend = backend.to_string();
            async move {
                // Arrival order is not `created` order.
                store
                    .ingest(&[
                        event("evt_a2", "invoice.paid", "in_a", 20),
                        event("evt_a1", "invoice.created", "in_a", 10),
                        event("evt_b1", "invoice.paid", "in_b", 15),
                    ])
                    .await
                    .unwrap();
                let first = store.claim("w1", 10, 60_000, &[]).await.unwrap();
                let mut got = ids(&first);
                got.sort();
                assert_eq!(got, ["evt_a1", "evt_b1"], "{backend}: one per object, the earliest");
                assert!(
                    first
                        .iter()
                        .all(|c| c.row.state == State::Running && c.row.attempts == 1)
                );
                assert!(
                    first.iter().all(|c| c.payload.contains(&c.row.event_id)),
                    "{backend}: payload read with the claim"
                );
                assert!(
                    store.claim("w2", 10, 60_000, &[]).await.unwrap().is_empty(),
                    "{backend}: object busy"
                );
                let a1 = first.iter().find(|c| c.row.event_id == "evt_a1").unwrap();
                assert_eq!(store.complete("w1", &[done(a1, succeeded())]).await.unwrap(), 1);
                assert_eq!(
                    ids(&store.claim("w2", 10, 60_000, &[]).await.unwrap()),
                    ["evt_a2"],
                    "{backend}"
                );
            }
        }
    );

    conformance!(
        limited_claims_keep_a_type_under_its_limit,
        |store: &Store, backend: &str| {
            let store = store.clone();
            let backend = backend.to_string();
            async move {
                let events: Vec<NewEvent> = (0..4)
                    .map(|i| event(&format!("evt_{i}"), "charge.failed", &format!("ch_{i}"), i))
                    .collect();
                store.ingest(&events).await.unwrap();
                let skip = ["charge.failed".to_string()];
                assert!(
                    store.claim("w", 10, 60_000, &skip).await.unwrap().is_empty(),
                    "{backend}: skipped types stay"
                );
                // The watchdog's question: a limited type's due work counts below its limit only.
                let limit = [("charge.failed".to_string(), 2)];
                assert!(
                    store.claimable_exists(&limit).await.unwrap(),
                    "{backend}: below its limit"
                );
                let first = store.claim_limited("w", "charge.failed", 2, 60_000, 10).await.unwrap();
                assert_eq!(first.len(), 2, "{backend}");
                assert!(
                    store
                        .claim_limited("w", "charge.failed", 2, 60_000, 10)
                        .await
                        .unwrap()
                        .is_empty(),
                    "{backend}: at its limit"
                );
                assert!(
                    !store.claimable_exists(&limit).await.unwrap(),
                    "{backend}: at its limit"
                );
                assert!(store.claimable_exists(&[]).await.unwrap(), "{backend}: no limit");
                store.complete("w", &[done(&first[0], succeeded())]).await.unwrap();
                assert!(store.claimable_exists(&limit).await.unwrap(), "{backend}: below again");
                assert_eq!(
                    store
                        .claim_limited("w", "charge.failed", 2, 60_000, 10)
                        .await
                        .unwrap()
                        .len(),
                    1,
                    "{backend}"
                );
            }
        }
    );

    conformance!(
        a_completion_applies_only_under_its_own_lease,
        |store: &Store, backend: &str| {
            let store = store.clone();
            let backend = backend.to_string();
            async move {
                store
                    .ingest(&[event("evt_1", "invoice.paid", "in_1", 1)])
                    .await
                    .unwrap();
                let claimed = store.claim("w1", 1, 60_000, &[]).await.unwrap();
                let retry = Finish::Retry {
                    at: now_ms() + 60_000,
                    kind: "stripe",
                    message: "card declined\0 with a NUL".into(),
                };
                assert_eq!(
                    store
                        .complete("intruder", &[done(&claimed[0], retry.clone())])
                        .await
                        .unwrap(),
                    0,
                    "{backend}"
                );
                assert_eq!(
                    store.complete("w1", &[done(&claimed[0], retry.clone())]).await.unwrap(),
                    1,
                    "{backend}"
                );
                assert_eq!(
                    store.complete("w1", &[done(&claimed[0], retry)]).await.unwrap(),
                    0,
                    "{backend}: once"
                );
                let row = store.execution(&claimed[0].row.id).await.unwrap().unwrap();
                assert_eq!(row.state, State::Scheduled, "{backend}");
                assert!(row.next_run_at.unwrap() > now_ms(), "{backend}: retries later");
                assert_eq!(
                    row.last_error.as_deref(),
                    Some("card declined\u{FFFD} with a NUL"),
                    "{backend}"
                );
                let attempts = store.attempts(&row.id).await.unwrap();
                assert_eq!(attempts.len(), 1, "{backend}");
                assert_eq!(attempts[0].outcome, "error", "{backend}");
            }
        }
    );

    conformance!(
        heartbeats_renew_live_leases_and_carry_cancel_requests,
        |store: &Store, backend: &str| {
            let store = store.clone();
            let backend = backend.to_string();
            async move {
                store
                    .ingest(&[
                        event("evt_1", "invoice.paid", "in_1", 1),
                        event("evt_2", "invoice.paid", "in_2", 1),
                    ])
                    .await
                    .unwrap();
                let claimed = store.claim("w1", 10, 60_000, &[]).await.unwrap();
                let running: Vec<String> = claimed.iter().map(|c| c.row.id.clone()).collect();
                store.act(&running[0], Action::Cancel).await.unwrap();
                let renewed = store.heartbeat("w1", &running, 60_000).await.unwrap();
                assert_eq!(renewed.ids.len(), 2, "{backend}");
                assert_eq!(renewed.cancel, [running[0].clone()], "{backend}");
                assert!(
                    store.heartbeat("w2", &running, 60_000).await.unwrap().ids.is_empty(),
                    "{backend}: not w2's"
                );
            }
        }
    );

    conformance!(
        rescue_takes_back_expired_leases_in_one_go,
        |store: &Store, backend: &str| {
            let store = store.clone();
            let backend = backend.to_string();
            async move {
                let mut last = event("evt_last", "invoice.paid", "in_last", 1);
                last.max_attempts = 1;
                let events = vec![
                    event("evt_1", "invoice.paid", "in_1", 1),
                    event("evt_2", "invoice.paid", "in_2", 1),
                    last,
                ];
                store.ingest(&events).await.unwrap();
                let claimed = store.claim("dead", 10, 1, &[]).await.unwrap();
                assert_eq!(claimed.len(), 3);
                let live = store
                    .ingest(&[event("evt_live", "invoice.paid", "in_live", 1)])
                    .await
                    .unwrap();
                store.claim("alive", 10, 60_000, &[]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                let mut rescued = store.rescue().await.unwrap();
                rescued.sort();
                let mut expected: Vec<String> = claimed.iter().map(|c| c.row.id.clone()).collect();
                expected.sort();
                assert_eq!(rescued, expected, "{backend}: the live lease stays");
                for c in &claimed {
                    let row = store.execution(&c.row.id).await.unwrap().unwrap();
                    let want = if c.row.event_id == "evt_last" {
                        State::Failed
                    } else {
                        State::Scheduled
                    };
                    assert_eq!(row.state, want, "{backend}: {}", c.row.event_id);
                    let attempts = store.attempts(&c.row.id).await.unwrap();
                    assert_eq!(attempts.len(), 1, "{backend}");
                    assert_eq!(attempts[0].outcome, "lost", "{backend}");
                }
                let live = store.execution(&live[0].execution_id).await.unwrap().unwrap();
                assert_eq!(live.state, State::Running, "{backend}");
                assert!(store.rescue().await.unwrap().is_empty(), "{backend}: once");
            }
        }
    );

    conformance!(
        discard_and_prune_touch_only_what_is_due,
        |store: &Store, backend: &str| {
            let store = store.clone();
            let backend = backend.to_string();
            async move {
                let mut overdue = event("evt_overdue", "invoice.paid", "in_o", 1);
                overdue.discard_at = Some(now_ms() - 1);
                let mut later = event("evt_later", "invoice.paid", "in_l", 1);
                later.run_at = now_ms() + 60_000;
                store
                    .ingest(&[overdue, later, event("evt_done", "invoice.paid", "in_d", 1)])
                    .await
                    .unwrap();
                assert_eq!(store.discard_overdue().await.unwrap(), 1, "{backend}");
                assert!(
                    store.next_due_at().await.unwrap().is_some_and(|at| at > now_ms()),
                    "{backend}"
                );
                let claimed = store.claim("w", 10, 60_000, &[]).await.unwrap();
                assert_eq!(
                    ids(&claimed),
                    ["evt_done"],
                    "{backend}: neither the discarded nor the future one"
                );
                store.complete("w", &[done(&claimed[0], succeeded())]).await.unwrap();
                assert_eq!(
                    store.prune(now_ms() - 60_000, 100).await.unwrap(),
                    0,
                    "{backend}: too recent"
                );
                // Finished: the succeeded and the discarded one; the future one is not.
                assert_eq!(store.prune(now_ms() + 1, 100).await.unwrap(), 2, "{backend}");
                assert!(
                    store.execution(&claimed[0].row.id).await.unwrap().is_none(),
                    "{backend}"
                );
                assert!(
                    store.attempts(&claimed[0].row.id).await.unwrap().is_empty(),
                    "{backend}: attempts go too"
                );
                assert_eq!(store.backlog().await.unwrap().0, 0, "{backend}");
            }
        }
    );

    conformance!(
        one_session_leads_and_hands_over_when_it_resigns,
        |store: &Store, backend: &str| {
            let store = store.clone();
            let backend = backend.to_string();
            async move {
                let every = Duration::from_secs(1);
                let mut first = store.leader_session(every).await.unwrap();
                let mut second = store.leader_session(every).await.unwrap();
                assert!(first.try_lead().await.unwrap(), "{backend}: the first to try leads");
                assert!(first.try_lead().await.unwrap(), "{backend}: and goes on leading");
                if store.shared() {
                    assert!(!second.try_lead().await.unwrap(), "{backend}: one leader at a time");
                    first.resign().await;
                    assert!(second.try_lead().await.unwrap(), "{backend}: handed over");
                } else {
                    // One process owns an SQLite file: each of its sessions leads.
                    assert!(second.try_lead().await.unwrap(), "{backend}");
                    first.resign().await;
                }
                second.resign().await;
            }
        }
    );

    conformance!(
        one_statement_acts_on_many_executions_in_the_states_it_fits,
        |store: &Store, backend: &str| {
            let store = store.clone();
            let backend = backend.to_string();
            async move {
                let events: Vec<NewEvent> = (0..4)
                    .map(|i| event(&format!("evt_{i}"), "invoice.paid", &format!("in_{i}"), 1))
                    .collect();
                let made = store.ingest(&events).await.unwrap();
                let ids: Vec<String> = made.iter().map(|o| o.execution_id.clone()).collect();
                // Two are claimed: one finishes, one keeps running; two stay scheduled.
                let mut claimed = store.claim("w", 2, 60_000, &[]).await.unwrap();
                claimed.sort_by_key(|c| c.row.seq);
                let (finished, busy) = (claimed[0].clone(), claimed[1].clone());
                store.complete("w", &[done(&finished, succeeded())]).await.unwrap();
                let mut all = ids.clone();
                all.push("exe_unknown".into());

                let rerun = store.act_many(&all, Action::Rerun).await.unwrap();
                assert_eq!(rerun.len(), 1, "{backend}: only the finished one");
                assert_eq!(rerun[0].id, finished.row.id, "{backend}");
                let new = store
                    .execution(rerun[0].created.as_ref().unwrap())
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    (new.state, new.origin, new.rerun_of.as_deref()),
                    (State::Scheduled, Origin::Rerun, Some(finished.row.id.as_str())),
                    "{backend}"
                );
                assert_eq!(
                    (new.attempts, new.max_attempts),
                    (0, finished.row.max_attempts),
                    "{backend}"
                );

                let mut cancelled: Vec<String> = store
                    .act_many(&all, Action::Cancel)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|a| a.id)
                    .collect();
                cancelled.sort();
                let mut expected: Vec<String> = ids.iter().filter(|id| **id != finished.row.id).cloned().collect();
                expected.sort();
                assert_eq!(
                    cancelled, expected,
                    "{backend}: scheduled and running, not finished or unknown"
                );
                let busy_now = store.execution(&busy.row.id).await.unwrap().unwrap();
                assert_eq!(
                    busy_now.state,
                    State::Running,
                    "{backend}: a running one is asked to stop"
                );
                assert!(
                    store
                        .heartbeat("w", std::slice::from_ref(&busy.row.id), 60_000)
                        .await
                        .unwrap()
                        .cancel
                        .contains(&busy.row.id),
                    "{backend}"
                );
                assert!(
                    store.act_many(&all, Action::Retry).await.unwrap().is_empty(),
                    "{backend}: nothing scheduled is left"
                );
                assert!(
                    matches!(
                        store.act("exe_unknown", Action::Cancel).await,
                        Err(deferral::store::ActionError::NotFound(_))
                    ),
                    "{backend}"
                );
            }
        }
    );
}
