//! Where each execution came from, as the REST API and the console say it: delivered
//! (`webhook`), read back from Stripe's list (`reconciled`, a Connect event's `account` kept),
//! or re-run by an operator (`rerun`, whatever the origin of the execution it re-runs).

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
    // An event of a connected account: Stripe lists it among the platform's, `account` set.
    let mut connect: Value = serde_json::from_str(&event(
        "evt_rec_connect",
        "customer.created",
        "cus_rec_connect",
        now_s() - 60,
    ))
    .unwrap();
    connect["account"] = ACCOUNT.into();
    fake.add_event(&connect.to_string(), false);

    let out = reconcile_ok(&app, &fake, &[]).await;
    assert!(
        out.contains("3 events seen, 2 new executions (1 already stored)"),
        "{out}"
    );
    let reconciled = executions(&app, "origin=reconciled").await;
    assert_eq!(reconciled.len(), 2);

    // The Connect event's execution keeps its account, and is processed as that account.
    let of_account = executions(&app, &format!("account={ACCOUNT}")).await;
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
