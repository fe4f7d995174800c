//! What the executor leaves in the database: the console's counts after every transition, two
//! stores on one database, texts PostgreSQL would refuse, and a batch the database refuses.

use super::*;

/// The console counts and lists scheduled and running executions in one part of the table
/// and finished ones in another (by `finished_at`): every transition must leave each row in
/// the part its state says, or it would vanish from the console's counts and filters.
#[tokio::test]
async fn status_counts_and_filters_agree_with_the_states_after_every_transition() {
    use domain::model::{Action, ExecutionFilter, State};
    let mut h = Harness::new().await;
    let mut s = settings();
    s.retry.initial_interval = Duration::from_secs(3600);
    s.retry.max_interval = Duration::from_secs(3600);
    h.run(
        s,
        job(|c, _| match c.row.event_type.as_str() {
            "ok" => Ok(JobOutput {
                result: "done".into(),
                source: None,
            }),
            "perm" => Err(JobError::permanent("resource_missing")),
            _ => Err(JobError::retryable("try later")),
        }),
    );
    let mut later = new_event("evt_future", "ok", "o4", 1);
    later.run_at = now_ms() + 3_600_000;
    let ids = h
        .ingest(vec![
            new_event("evt_ok", "ok", "o1", 1),
            new_event("evt_perm", "perm", "o2", 1),
            new_event("evt_retry", "retry", "o3", 1),
            later,
        ])
        .await;
    h.wait(&ids[0], "succeeded").await;
    h.wait(&ids[1], "failed").await;
    // The retried one is scheduled again, an hour out, after its first attempt.
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.store.execution(&ids[2]).await.unwrap().unwrap().attempts == 0 {
        assert!(Instant::now() < deadline, "the retried execution never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.wait(&ids[2], "scheduled").await;
    h.store.act(&ids[3], Action::Cancel).await.unwrap();
    let rerun = h.store.act(&ids[0], Action::Rerun).await.unwrap();
    h.wait(&rerun.id, "succeeded").await;

    let expected = [
        (State::Scheduled, 1),
        (State::Running, 0),
        (State::Succeeded, 2),
        (State::Failed, 1),
        (State::Cancelled, 1),
        (State::Discarded, 0),
    ];
    let counts = h.store.count_states(&ExecutionFilter::default(), 1000).await.unwrap();
    assert_eq!(counts, expected.to_vec());
    for (state, n) in expected {
        let filter = ExecutionFilter {
            statuses: vec![state],
            types: vec![],
            livemode: Some(false),
            ..Default::default()
        };
        let (rows, _) = h.store.list(&filter).await.unwrap();
        assert_eq!(rows.len() as i64, n, "{state} listed");
        assert!(rows.iter().all(|r| r.state() == state));
        let counted = h.store.count_states(&filter, 1000).await.unwrap();
        assert_eq!(counted, vec![(state, n)], "{state} counted with a filter");
    }
    h.shutdown().await;
}

/// Two processes writing one database (a second `deferral` on the same SQLite file, a
/// `deferral demo --force` beside a running server): each waits for the other's write
/// transactions instead of failing, and an event delivered to both is stored once.
#[tokio::test]
async fn two_stores_on_one_database_ingest_concurrently_without_errors_or_duplicates() {
    let (url, _dir) = support::fresh_database().await;
    let first = Store::open(&url).await.unwrap();
    let second = Store::open(&url).await.unwrap();
    let batches = |tag: &'static str| -> Vec<Vec<NewEvent>> {
        (0..20)
            .map(|b| {
                (0..25)
                    .map(|i| {
                        // Every fifth event is delivered to both stores.
                        let id = if i % 5 == 0 {
                            format!("evt_both_{b}_{i}")
                        } else {
                            format!("evt_{tag}_{b}_{i}")
                        };
                        new_event(&id, "customer.updated", &format!("cus_{b}_{i}"), 1)
                    })
                    .collect()
            })
            .collect()
    };
    let run = |store: Store, batches: Vec<Vec<NewEvent>>| {
        tokio::spawn(async move {
            let mut answers = HashMap::new();
            for batch in batches {
                let outcomes = store.ingest(&batch).await.expect("ingest waits its turn");
                for (e, o) in batch.iter().zip(outcomes) {
                    answers.insert(e.id.clone(), o.execution_id);
                }
            }
            answers
        })
    };
    let (a, b) = tokio::join!(run(first.clone(), batches("a")), run(second.clone(), batches("b")));
    let (a, b) = (a.unwrap(), b.unwrap());
    for (id, execution) in a.iter().filter(|(id, _)| id.starts_with("evt_both")) {
        assert_eq!(Some(execution), b.get(id), "{id} answered with one execution by both");
    }
    let counts = first.count_by_state().await.unwrap();
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 20 * (20 + 20 + 5), "one execution per distinct event id");
}

#[tokio::test]
async fn texts_with_nul_characters_are_stored_with_a_replacement_character() {
    // PostgreSQL refuses NUL in text; a handler quoting a response body may produce one.
    let mut h = Harness::new().await;
    h.run(
        settings(),
        job(|c, _| {
            if c.row.event_type == "fails" {
                Err(JobError::permanent("bad\0byte"))
            } else {
                Ok(JobOutput {
                    result: "a\0b".into(),
                    source: Some("s\0".into()),
                })
            }
        }),
    );
    let ids = h
        .ingest(vec![
            new_event("evt_n", "ok", "o1", 1),
            new_event("evt_f", "fails", "o2", 1),
        ])
        .await;
    let ok = h.wait(&ids[0], "succeeded").await;
    assert_eq!(ok.result.as_deref(), Some("a\u{FFFD}b"));
    assert_eq!(ok.source.as_deref(), Some("s\u{FFFD}"));
    let failed = h.wait(&ids[1], "failed").await;
    assert_eq!(failed.last_error.as_deref(), Some("bad\u{FFFD}byte"));
    h.shutdown().await;
}

#[tokio::test]
async fn a_completion_the_database_refuses_does_not_hold_up_the_others() {
    let mut h = Harness::new().await;
    // The database itself refuses to record one result: a fault no retry can fix.
    h.execute(
        "CREATE TRIGGER refuse_poison BEFORE UPDATE OF result ON executions WHEN NEW.result = 'poison'
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.result = 'poison' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse_poison BEFORE UPDATE ON executions FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
    )
    .await;
    let mut s = settings();
    s.lease = Duration::from_secs(1);
    h.run(
        s,
        job(|c, _| {
            Ok(JobOutput {
                result: if c.row.event_type == "poison" { "poison" } else { "done" }.into(),
                source: None,
            })
        }),
    );
    let mut events = vec![new_event("evt_poison", "poison", "p", 1)];
    events.extend((0..5).map(|i| new_event(&format!("evt_ok{i}"), "ok", &format!("o{i}"), 1)));
    let ids = h.ingest(events).await;
    for id in &ids[1..] {
        h.wait(id, "succeeded").await;
    }
    // Given up, its lease expired: each attempt counts as lost, and the last (of the event's
    // three) fails it.
    let poison = h.wait(&ids[0], "failed").await;
    assert_eq!(poison.attempts, 3);
    let attempts = h.store.attempts(&ids[0]).await.unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| a.outcome == "lost"), "{attempts:?}");
    h.shutdown().await;
}
