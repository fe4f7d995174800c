//! The executions per event type: `GET /api/v1/event-types` (exact, per state, with the pause
//! holding each type) and the console's type filter (capped, one number per type) count the same
//! executions. Both backends.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{TestApp, event, type_entry};

const DONE: &str = "product.created";
const HELD: &str = "coupon.created";

#[tokio::test]
async fn the_api_and_the_console_filter_count_the_same_executions_per_type() {
    let app = TestApp::spawn_with(|c| c.process_delay = Duration::from_secs(1)).await;
    let now = chrono::Utc::now().timestamp();
    let mut done = Vec::new();
    for i in 0..3 {
        done.push(
            app.deliver_ok(&event(&format!("evt_d{i}"), DONE, &format!("prod_{i}"), now))
                .await,
        );
    }
    // An hour ahead: they stay scheduled.
    for i in 0..2 {
        app.deliver_ok(&event(&format!("evt_h{i}"), HELD, &format!("cpn_{i}"), now + 3600))
            .await;
    }
    for id in &done {
        app.wait_for(id, "succeeded", Duration::from_secs(10)).await;
    }
    // Two pauses match the held type: the oldest is the one said to hold it.
    let (status, _) = app.api_post("/api/v1/event-types/coupon.*/pause").await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (status, _) = app.api_post(&format!("/api/v1/event-types/{HELD}/pause")).await;
    assert_eq!(status, 200);

    let (status, list) = app.api("/api/v1/event-types").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        type_entry(&list, DONE)["counts"],
        serde_json::json!({ "succeeded": 3 }),
        "{list}"
    );
    assert!(type_entry(&list, DONE)["paused"].is_null(), "{list}");
    let held = type_entry(&list, HELD);
    assert_eq!(held["counts"], serde_json::json!({ "scheduled": 2 }), "{list}");
    assert_eq!(held["paused"]["pattern"], "coupon.*", "{list}");
    assert_eq!(held["paused"]["holds"], 2, "{list}");
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");

    // The console's filter: one number per type, the same as the API's sum.
    let session = app.log_in().await;
    let resp = app
        .client
        .post(format!("{}/console/fn/facets", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("deferral_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let facets: Value = resp.json().await.unwrap();
    assert_eq!(facets["types"], serde_json::json!([HELD, DONE]), "{facets}");
    assert_eq!(
        facets["type_counts"],
        serde_json::json!([
            { "event_type": HELD, "count": 2, "capped": false },
            { "event_type": DONE, "count": 3, "capped": false },
        ]),
        "{facets}"
    );

    // With a cap, each type's total stops there.
    assert_eq!(
        app.store.event_type_totals(3).await.unwrap(),
        [(HELD.to_string(), 2), (DONE.to_string(), 3)]
    );
    assert_eq!(
        app.store.event_type_totals(2).await.unwrap(),
        [(HELD.to_string(), 2), (DONE.to_string(), 2)]
    );
    app.stop().await;
}
