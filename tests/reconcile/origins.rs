//! Where each execution came from, as the REST API and the console say it: delivered
//! (`webhook`), read back from Stripe's list (`reconciled`, a Connect event's `account` kept),
//! or re-run by an operator (`rerun`, whatever the origin of the execution it re-runs).
//! Stripe lists a connected account's events only to a request made as the account
//! (`Stripe-Account`), so the run lists each account Deferral knows as well as the platform.

use std::time::Duration;

use serde_json::Value;

use super::fake_stripe::FakeStripe;
use super::support::event;
use super::{WAIT, executions, listed, now_s, reconcile_ok, server};

const ACCOUNT: &str = "acct_1RecConnect";

/// The execution ids among `executions`.
fn ids(executions: &[Value]) -> Vec<&str> {
    executions.iter().map(|e| e["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn reconciled_connect_events_keep_their_account_and_reruns_say_rerun() {
    let fake = FakeStripe::start().await;
    let app = server(&fake, Duration::ZERO).await;
    let delivered = listed(1, 120).1;
    fake.add_event(&delivered, false);
    let webhook = app.deliver_ok(&delivered).await;
    fake.add_event(&listed(2, 90).1, false);
    // A connected account's events: one delivered (Deferral knows the account from it), one
    // missed. Stripe lists them to requests made as the account only.
    let connect = |id: &str, ago: i64| {
        let mut e: Value =
            serde_json::from_str(&event(id, "customer.created", "cus_rec_connect", now_s() - ago)).unwrap();
        e["account"] = ACCOUNT.into();
        e.to_string()
    };
    let known = connect("evt_rec_connect_known", 100);
    fake.add_event(&known, true);
    app.deliver_ok(&known).await;
    fake.add_event(&connect("evt_rec_connect", 60), false);

    let out = reconcile_ok(&app, &fake, &[]).await;
    assert!(
        out.contains(
            "3 events seen, 2 new executions (1 already stored); listed the platform's events and \
             those of 1 connected account (as each, with Stripe-Account)"
        ),
        "{out}"
    );
    let lists: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|s| s.path.starts_with("/v1/events?"))
        .map(|s| s.account)
        .collect();
    assert_eq!(
        lists,
        [None, Some(ACCOUNT.to_string())],
        "one list as the platform, one as the account"
    );
    let reconciled = executions(&app, "origin=reconciled").await;
    assert_eq!(reconciled.len(), 2);

    // The Connect event's execution keeps its account, and is processed as that account.
    let of_account: Vec<Value> = executions(&app, &format!("account={ACCOUNT}"))
        .await
        .into_iter()
        .filter(|e| e["origin"] == "reconciled")
        .collect();
    assert_eq!(of_account.len(), 1, "{of_account:?}");
    let listed_connect = &of_account[0];
    assert_eq!(
        (
            &listed_connect["event_id"],
            &listed_connect["origin"],
            &listed_connect["account"]
        ),
        (&"evt_rec_connect".into(), &"reconciled".into(), &ACCOUNT.into())
    );
    let id = listed_connect["id"].as_str().unwrap();
    app.wait_for(id, "succeeded", WAIT).await;
    assert!(
        fake.requests()
            .iter()
            .any(|s| s.path == "/v1/events/evt_rec_connect" && s.account.as_deref() == Some(ACCOUNT)),
        "the event was not re-fetched as {ACCOUNT}: {:?}",
        fake.requests()
    );

    // Re-running it makes an execution of origin `rerun`, of the same account.
    let (status, rerun) = app.api_post(&format!("/api/v1/executions/{id}/rerun")).await;
    assert_eq!(status, 200, "{rerun}");
    let rerun_id = rerun["id"].as_str().unwrap();
    assert_ne!(rerun_id, id);
    let (status, shown) = app.api(&format!("/api/v1/executions/{rerun_id}")).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        (&shown["origin"], &shown["account"]),
        (&"rerun".into(), &ACCOUNT.into())
    );
    assert_eq!(ids(&executions(&app, "origin=rerun").await), [rerun_id]);
    assert_eq!(executions(&app, "origin=reconciled").await.len(), 2);

    // The console's list filtered on origin shows the reconciled ones only.
    let session = app.log_in().await;
    let row = |id: &str| format!("/executions/{id}\"");
    let (status, all) = app.page("/", &session).await;
    assert_eq!(status, 200);
    for id in [webhook.as_str(), rerun_id].into_iter().chain(ids(&reconciled)) {
        assert!(all.contains(&row(id)), "{id} not listed unfiltered");
    }
    let (status, page) = app.page("/?origin=reconciled", &session).await;
    assert_eq!(status, 200);
    for id in ids(&reconciled) {
        assert!(page.contains(&row(id)), "reconciled {id} not listed:\n{page}");
    }
    for (origin, id) in [("webhook", webhook.as_str()), ("rerun", rerun_id)] {
        assert!(
            !page.contains(&row(id)),
            "{origin} execution {id} listed as reconciled:\n{page}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_sweep_lists_each_known_connected_account_as_the_account() {
    let fake = FakeStripe::start().await;
    let app = server(&fake, Duration::from_millis(500)).await;
    let connect = |id: &str| {
        let mut e: Value = serde_json::from_str(&event(id, "customer.created", "cus_rec_sweep", now_s() - 30)).unwrap();
        e["account"] = ACCOUNT.into();
        e.to_string()
    };
    // Deferral learns of the account from a delivery; then one of its events goes missing.
    let known = connect("evt_rec_sweep_known");
    fake.add_event(&known, true);
    app.deliver_ok(&known).await;
    fake.add_event(&connect("evt_rec_sweep_missed"), false);

    let deadline = std::time::Instant::now() + WAIT;
    let missed = loop {
        let found = executions(&app, "origin=reconciled").await;
        if let Some(e) = found.into_iter().find(|e| e["event_id"] == "evt_rec_sweep_missed") {
            break e;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sweep never stored the missed event"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(missed["account"], ACCOUNT);
    assert!(
        fake.requests()
            .iter()
            .any(|s| s.path.starts_with("/v1/events?") && s.account.as_deref() == Some(ACCOUNT)),
        "never listed as {ACCOUNT}"
    );
    app.stop().await;
}
