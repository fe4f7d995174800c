//! `POST /webhooks/stripe` over HTTP against the real server, and the read API.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::{SECRET, TestApp, event, test_config};

async fn count(app: &TestApp, table: &str) -> i64 {
    let url = &app.database_url;
    // Read through a separate connection, as an operator would.
    let sql = format!("SELECT COUNT(*) FROM {table}");
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let (n,): (i64,) = sqlx::query_as(&sql).fetch_one(&pool).await.unwrap();
        n
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let (n,): (i64,) = sqlx::query_as(&sql).fetch_one(&pool).await.unwrap();
        n
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn accepts_a_signed_event_and_stores_it_with_its_metadata() {
    let app = TestApp::spawn().await;
    let body = event("evt_accept", "customer.created", "cus_1", now());
    let resp = app.deliver(&body).await;
    assert_eq!(resp.status(), 200);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["duplicate"], false);
    let id = json["execution_id"].as_str().unwrap();

    let (status, exe) = app.api(&format!("/api/v1/executions/{id}")).await;
    assert_eq!(status, 200, "{exe}");
    assert_eq!(exe["event_id"], "evt_accept");
    assert_eq!(exe["event_type"], "customer.created");
    assert_eq!(exe["livemode"], false);
    assert_eq!(exe["api_version"], "2024-06-20");
    assert_eq!(exe["object_id"], "cus_1");
    // The payload is kept verbatim.
    assert_eq!(
        app.store.event_payload("evt_accept").await.unwrap().as_deref(),
        Some(body.as_str())
    );
}

#[tokio::test]
async fn a_redelivery_returns_the_same_execution_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let body = event("evt_dup", "invoice.paid", "in_1", now());
    let first = app.deliver_ok(&body).await;
    let resp = app.deliver(&body).await;
    assert_eq!(resp.status(), 200);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["execution_id"], first.as_str());
    assert_eq!(json["duplicate"], true);
    assert_eq!(count(&app, "executions").await, 1);
    assert_eq!(count(&app, "events").await, 1);
}

#[tokio::test]
async fn concurrent_duplicates_make_one_execution() {
    let app = TestApp::spawn().await;
    let body = event("evt_race", "invoice.paid", "in_1", now());
    let ids = futures::future::join_all((0..20).map(|_| app.deliver_ok(&body))).await;
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    assert_eq!(count(&app, "executions").await, 1);
}

#[tokio::test]
async fn rejections_answer_400_with_their_code_and_store_nothing() {
    let app = TestApp::spawn().await;
    let body = event("evt_bad", "customer.created", "cus_1", now());
    let t = now();
    let good = deferral::webhook::signature::sign(SECRET, t, body.as_bytes());
    let cases: Vec<(Option<String>, String, &str)> = vec![
        (None, body.clone(), "missing_signature_header"),
        (Some("nonsense".into()), body.clone(), "malformed_signature_header"),
        (Some(format!("t={t},v0={good}")), body.clone(), "no_v1_signature"),
        (
            Some(deferral::webhook::signature::header_for(
                SECRET,
                t - 301,
                body.as_bytes(),
            )),
            body.clone(),
            "timestamp_outside_tolerance",
        ),
        (
            Some(format!("t={t},v1={good}")),
            body.replace("cus_1", "cus_2"),
            "no_matching_signature",
        ),
        (
            Some(deferral::webhook::signature::header_for(
                SECRET,
                t,
                b"{\"not\":\"an event\"}",
            )),
            "{\"not\":\"an event\"}".into(),
            "invalid_event",
        ),
    ];
    for (header, payload, code) in cases {
        let mut req = app.client.post(format!("{}/webhooks/stripe", app.url)).body(payload);
        if let Some(h) = header {
            req = req.header("Stripe-Signature", h);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 400, "{code}");
        let json: Value = resp.json().await.unwrap();
        assert_eq!(json["error"], code);
        assert!(json["message"].as_str().unwrap().len() > 10, "{json}");
    }
    assert_eq!(count(&app, "events").await, 0);
    assert_eq!(count(&app, "executions").await, 0);
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_413_and_not_stored() {
    let app = TestApp::spawn().await;
    let mut big = event("evt_big", "customer.created", "cus_1", now());
    big.insert_str(1, &format!("\"padding\":\"{}\",", "x".repeat(1024 * 1024)));
    let resp = app.deliver(&big).await;
    assert_eq!(resp.status(), 413);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["error"], "payload_too_large");
    assert_eq!(count(&app, "events").await, 0);
}

#[tokio::test]
async fn without_a_secret_the_endpoint_answers_503() {
    let app = TestApp::spawn_with(|c| c.stripe_webhook_secret.0.clear()).await;
    let resp = app.deliver(&event("evt_1", "customer.created", "cus_1", now())).await;
    assert_eq!(resp.status(), 503);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["error"], "webhook_secret_missing");
    assert!(json["message"].as_str().unwrap().contains("STRIPE_WEBHOOK_SECRET"));
}

#[tokio::test]
async fn rotated_secrets_both_verify() {
    let app = TestApp::spawn_with(|c| c.stripe_webhook_secret.0 = vec!["whsec_old".into(), SECRET.into()]).await;
    app.deliver_ok(&event("evt_rot", "customer.created", "cus_1", now()))
        .await;
}

#[tokio::test]
async fn events_outside_the_allow_list_are_ignored() {
    let app = TestApp::spawn_with(|c| c.event_types.0 = vec!["invoice.paid".into()]).await;
    let resp = app
        .deliver(&event("evt_other", "customer.created", "cus_1", now()))
        .await;
    assert_eq!(resp.status(), 200);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["ignored"], true);
    assert_eq!(count(&app, "executions").await, 0);
    app.deliver_ok(&event("evt_listed", "invoice.paid", "in_1", now()))
        .await;
    assert_eq!(count(&app, "executions").await, 1);
    let metrics = app
        .client
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("deferral_webhooks_total{outcome=\"ignored\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_processing_delay_schedules_after_the_event_was_created_never_in_the_past() {
    let app = TestApp::spawn_with(|c| c.process_delay = std::time::Duration::from_secs(3600)).await;
    let created = now();
    let fresh = app
        .deliver_ok(&event("evt_fresh", "customer.created", "cus_1", created))
        .await;
    let delivered_at = chrono::Utc::now().timestamp_millis();
    let old = app
        .deliver_ok(&event("evt_old", "customer.created", "cus_2", created - 7200))
        .await;
    let fresh = app.store.execution(&fresh).await.unwrap().unwrap();
    let old = app.store.execution(&old).await.unwrap().unwrap();
    assert_eq!(fresh.state, "scheduled");
    assert_eq!(fresh.next_run_at, Some((created + 3600) * 1000));
    // Created two hours ago: one hour after that is already past, so it is due now, not earlier.
    let due = old.scheduled_at;
    assert!(due >= delivered_at && due <= delivered_at + 1000, "{old:?}");
}

#[tokio::test]
async fn dedupe_survives_a_restart() {
    let app = TestApp::spawn().await;
    let body = event("evt_restart", "customer.created", "cus_1", now());
    let first = app.deliver_ok(&body).await;
    let url = app.database_url.clone();
    let dir = app.stop().await;

    let app = TestApp::start(test_config(&url), dir).await;
    let resp = app.deliver(&body).await;
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["execution_id"], first.as_str());
    assert_eq!(json["duplicate"], true);
}

#[tokio::test]
async fn headers_made_by_stripes_own_library_verify() {
    let app = TestApp::spawn().await;
    let body = event("evt_interop", "customer.created", "cus_1", now());
    let header = stripe_node_header(SECRET, now(), &body);
    let send = |payload: String| {
        app.client
            .post(format!("{}/webhooks/stripe", app.url))
            .header("Stripe-Signature", header.clone())
            .body(payload)
            .send()
    };
    assert_eq!(send(body.clone()).await.unwrap().status(), 200);
    let tampered = body.replacen("cus_1", "cus_2", 1);
    assert_eq!(send(tampered).await.unwrap().status(), 400);
}

/// `stripe.webhooks.generateTestHeaderString` from the `stripe` npm package.
fn stripe_node_header(secret: &str, timestamp: i64, payload: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");
    let mut child = Command::new("node")
        .current_dir(dir)
        .args(["sign.js", secret, &timestamp.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node is installed");
    child.stdin.take().unwrap().write_all(payload.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "run `npm ci` in tests/interop (scripts/setup.sh test does)"
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_api_requires_its_token() {
    let app = TestApp::spawn().await;
    let url = format!("{}/api/v1/executions", app.url);
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        app.client.get(&url).bearer_auth("wrong").send().await.unwrap().status(),
        401
    );
    assert_eq!(
        app.client
            .get(&url)
            .bearer_auth(support::API_TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let app = TestApp::spawn_with(|c| c.api_token = None).await;
    let resp = app
        .client
        .get(format!("{}/api/v1/executions", app.url))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let json: Value = resp.json().await.unwrap();
    assert!(
        json["message"].as_str().unwrap().contains("DEFERRAL_API_TOKEN"),
        "{json}"
    );
}

#[tokio::test]
async fn the_api_pages_newest_first_and_filters() {
    let app = TestApp::spawn_with(|c| c.process_delay = std::time::Duration::from_secs(3600)).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let ty = if i % 2 == 0 { "invoice.paid" } else { "customer.created" };
        ids.push(
            app.deliver_ok(&event(&format!("evt_{i}"), ty, &format!("obj_{i}"), now()))
                .await,
        );
    }
    let (status, page1) = app.api("/api/v1/executions?limit=3").await;
    assert_eq!(status, 200);
    let got: Vec<&str> = page1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[6].as_str(), ids[5].as_str(), ids[4].as_str()]);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = app.api(&format!("/api/v1/executions?limit=3&cursor={cursor}")).await;
    let got: Vec<&str> = page2["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[3].as_str(), ids[2].as_str(), ids[1].as_str()]);
    let cursor = page2["next_cursor"].as_str().unwrap();
    let (_, page3) = app.api(&format!("/api/v1/executions?limit=3&cursor={cursor}")).await;
    assert_eq!(page3["data"].as_array().unwrap().len(), 1);
    assert_eq!(page3["next_cursor"], Value::Null);

    let (_, paid) = app
        .api("/api/v1/executions?type=invoice.paid&status=scheduled&livemode=false")
        .await;
    assert_eq!(paid["data"].as_array().unwrap().len(), 4);
    let (_, none) = app.api("/api/v1/executions?livemode=true").await;
    assert_eq!(none["data"].as_array().unwrap().len(), 0);
    let (_, by_event) = app.api("/api/v1/executions?q=evt_3").await;
    assert_eq!(by_event["data"][0]["id"], ids[3].as_str());

    for bad in [
        "status=done",
        "livemode=maybe",
        "limit=0",
        "cursor=zzz",
        "colour=red",
        "from=yesterday",
    ] {
        let (status, err) = app.api(&format!("/api/v1/executions?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(err["error"], "invalid_filter", "{bad}");
    }
    let (status, _) = app.api("/api/v1/executions/exe_nope").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_unreachable_database_answers_503_so_stripe_retries() {
    let app = TestApp::spawn().await;
    app.store.close().await;
    let resp = app
        .deliver(&event("evt_down", "customer.created", "cus_1", now()))
        .await;
    assert_eq!(resp.status(), 503);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["error"], "unavailable");
}
