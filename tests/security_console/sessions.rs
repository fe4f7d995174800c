//! Sessions that hold across processes and restarts, the viewer role, and the audit log.

use std::time::Duration;

use super::support::{TestApp, test_config};
use super::{PASSWORD, VIEWER_PASSWORD, call, client_from, log_in, page, scheduled, scheduled_of};

async fn restart(app: TestApp, adjust: impl FnOnce(&mut deferral::config::Config)) -> TestApp {
    let url = app.database_url.clone();
    let dir = app.stop().await;
    let mut config = test_config(&url);
    adjust(&mut config);
    TestApp::start(config, dir).await
}

async fn facets(app: &TestApp, token: &str) -> u16 {
    call(app, &app.client, "facets", "", token).await.0
}

/// "Log out" with this session's cookie; the answer clears the cookie.
async fn log_out(app: &TestApp, token: &str) {
    let resp = app
        .client
        .post(format!("{}/console/fn/logout", app.url))
        .header("cookie", format!("deferral_session={token}"))
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
}

/// The rows `sql` answers on the app's database, over a connection of the test's own (behind
/// the store's back).
async fn rows(database_url: &str, sql: &str, binds: &[&str]) -> usize {
    if database_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(database_url).await.unwrap();
        let query = binds.iter().fold(sqlx::query(sql), |q, b| q.bind(*b));
        let n = query.fetch_all(&pool).await.unwrap().len();
        pool.close().await;
        n
    } else {
        let pool = sqlx::SqlitePool::connect(database_url).await.unwrap();
        let query = binds.iter().fold(sqlx::query(sql), |q, b| q.bind(*b));
        let n = query.fetch_all(&pool).await.unwrap().len();
        pool.close().await;
        n
    }
}

#[tokio::test]
async fn logout_and_expiry_are_final_across_a_restart() {
    let app = TestApp::spawn().await;
    let ended = log_in(&app, PASSWORD).await;
    let kept = log_in(&app, PASSWORD).await;
    let expiring = log_in(&app, PASSWORD).await;
    log_out(&app, &ended).await;
    assert_eq!(facets(&app, &ended).await, 401);

    let app = restart(app, |_| {}).await;
    assert_eq!(facets(&app, &ended).await, 401, "logged out stays logged out");
    assert_eq!(
        facets(&app, &kept).await,
        200,
        "the signing secret is kept in the database"
    );
    // Expiry is the database's word too.
    let id = expiring.split('.').next().unwrap();
    let sql = "UPDATE console_sessions SET expires_at = 1 WHERE id = $1 RETURNING id";
    assert_eq!(rows(&app.database_url, sql, &[id]).await, 1);
    assert_eq!(facets(&app, &expiring).await, 401);
    // A token with a forged MAC is refused without a session behind it.
    let forged = format!("{}.{}", id, "0".repeat(64));
    assert_eq!(facets(&app, &forged).await, 401);
}

#[tokio::test]
async fn logging_out_in_one_process_ends_the_session_in_every_other() {
    let a = TestApp::spawn().await;
    let b = TestApp::start(test_config(&a.database_url), tempfile::tempdir().unwrap()).await;
    let token = log_in(&a, PASSWORD).await;
    assert_eq!(facets(&b, &token).await, 200, "B honours a session A opened");
    log_out(&b, &token).await;
    assert_eq!(facets(&a, &token).await, 401, "logged out on B, so on A too");
    assert_eq!(facets(&b, &token).await, 401);
}

#[tokio::test]
async fn a_configured_session_secret_signs_sessions_and_is_never_stored() {
    const SECRET: &str = "configured-session-secret-0123456789abcdef";
    const OTHER: &str = "another-session-secret-0123456789abcdef";
    let secret = |s: &str| {
        let s = s.to_string();
        move |c: &mut deferral::config::Config| c.session_secret = Some(s)
    };
    let app = TestApp::spawn_with(secret(SECRET)).await;
    let token = log_in(&app, PASSWORD).await;
    let stored = "SELECT secret FROM console_secret";
    assert_eq!(rows(&app.database_url, stored, &[]).await, 0, "none generated");

    let app = restart(app, secret(SECRET)).await;
    assert_eq!(facets(&app, &token).await, 200, "the same secret: the session holds");
    let app = restart(app, secret(OTHER)).await;
    assert_eq!(facets(&app, &token).await, 401, "signed with another secret");
    let fresh = log_in(&app, PASSWORD).await;
    assert_eq!(facets(&app, &fresh).await, 200);
    assert_eq!(rows(&app.database_url, stored, &[]).await, 0, "still none stored");
}

#[tokio::test]
async fn a_password_change_ends_every_session_opened_with_the_old_one() {
    let app = TestApp::spawn_with(|c| c.console_viewer_password = Some(VIEWER_PASSWORD.into())).await;
    let operator = log_in(&app, PASSWORD).await;
    let viewer = log_in(&app, VIEWER_PASSWORD).await;
    let app = restart(app, |c| {
        c.console_password = Some("a-new-password".into());
        c.console_viewer_password = Some(VIEWER_PASSWORD.into());
    })
    .await;
    assert_eq!(facets(&app, &operator).await, 401, "opened with the old password");
    assert_eq!(facets(&app, &viewer).await, 200, "the viewer's password did not change");
    let fresh = log_in(&app, "a-new-password").await;
    assert_eq!(facets(&app, &fresh).await, 200);
    // Going back to the old password does not bring its sessions back.
    let app = restart(app, |c| c.console_viewer_password = Some(VIEWER_PASSWORD.into())).await;
    assert_eq!(facets(&app, &operator).await, 401);
    assert_eq!(facets(&app, &fresh).await, 401);
}

#[tokio::test]
async fn a_viewer_browses_but_cannot_act() {
    let app = TestApp::spawn_with(|c| {
        c.process_delay = Duration::from_secs(1);
        c.console_viewer_password = Some(VIEWER_PASSWORD.into());
    })
    .await;
    let id = scheduled(&app, 2).await;
    let viewer = log_in(&app, VIEWER_PASSWORD).await;
    let operator = log_in(&app, PASSWORD).await;

    let (status, _, html) = page(&app, &format!("/executions/{id}"), &viewer).await;
    assert_eq!(status, 200);
    assert!(html.contains("state-scheduled"), "the viewer sees the execution");
    assert!(!html.contains("action-cancel") && !html.contains("Retry now"), "{html}");
    let (_, _, list) = page(&app, "/", &viewer).await;
    assert!(list.contains(&id) && !list.contains("bulk-cancel"));
    let (_, _, bulk) = page(&app, "/bulk?action=cancel", &viewer).await;
    assert!(bulk.contains("can browse but not act") && !bulk.contains("bulk-apply"));
    // The operator's pages have them.
    let (_, _, html) = page(&app, &format!("/executions/{id}"), &operator).await;
    assert!(html.contains("action-cancel") && html.contains("Retry now"));
    let (_, _, list) = page(&app, "/", &operator).await;
    assert!(list.contains("bulk-cancel"));

    // Forged actions from the viewer's session are refused and change nothing.
    for (name, body) in [
        ("act", format!("id={id}&action=cancel")),
        ("act", format!("id={id}&action=retry")),
        ("bulk_apply", "action=cancel&query=cursor%3Db999999".to_string()),
        (
            "set_paused",
            "pattern=customer.created&action=pause&back=%2F".to_string(),
        ),
        ("set_paused", "pattern=*&action=pause&back=%2F".to_string()),
    ] {
        let (status, text) = call(&app, &app.client, name, &body, &viewer).await;
        assert_eq!(status, 403, "{name}: {text}");
        assert!(text.contains("Forbidden"), "{text}");
    }
    assert!(
        app.store.pauses().await.unwrap().is_empty(),
        "the viewer paused nothing"
    );
    let row = app.store.execution(&id).await.unwrap().unwrap();
    assert_eq!(row.state, "scheduled");
    assert!(
        row.next_run_at.unwrap() > chrono::Utc::now().timestamp_millis() + 60_000,
        "not retried"
    );
    let (status, _) = call(&app, &app.client, "bulk_preview", "action=cancel&query=", &viewer).await;
    assert_eq!(status, 200, "counting is browsing");
    let (_, audit) = app.api("/api/v1/audit").await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 0, "{audit}");

    // A pause the operator made stays, whatever the viewer posts.
    let pause = "pattern=sec.held&action=pause&back=%2F";
    assert_eq!(call(&app, &app.client, "set_paused", pause, &operator).await.0, 200);
    let resume = "pattern=sec.held&action=resume&back=%2F";
    assert_eq!(call(&app, &app.client, "set_paused", resume, &viewer).await.0, 403);
    assert_eq!(app.store.pauses().await.unwrap().len(), 1, "not resumed by the viewer");
}

#[tokio::test]
async fn every_operator_action_is_on_record() {
    let app = TestApp::spawn_with(|c| c.process_delay = Duration::from_secs(1)).await;
    let first = scheduled(&app, 3).await;
    let second = scheduled_of(&app, 4, "sec.bulk").await;
    let third = scheduled_of(&app, 5, "sec.bulk").await;
    let operator = client_from("127.0.0.3");
    let (_, _, token) = super::log_in_with(&operator, &app, PASSWORD, &[]).await;
    let token = token.unwrap();
    let session = token.split('.').next().unwrap().to_string();

    let (status, _) = call(&app, &operator, "act", &format!("id={first}&action=cancel"), &token).await;
    assert_eq!(status, 200);
    let (status, text) = call(&app, &operator, "act", &format!("id={first}&action=rerun"), &token).await;
    assert_eq!(status, 200, "{text}");
    let rerun: serde_json::Value = serde_json::from_str(&text).unwrap();
    let (status, preview) = call(
        &app,
        &operator,
        "bulk_preview",
        "action=cancel&query=type%3Dsec.bulk",
        &token,
    )
    .await;
    assert_eq!(status, 200);
    let bound: serde_json::Value = serde_json::from_str(&preview).unwrap();
    let query = format!("type%3Dsec.bulk%26cursor%3D{}", bound["up_to"].as_str().unwrap());
    let (status, text) = call(
        &app,
        &operator,
        "bulk_apply",
        &format!("action=cancel&query={query}"),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    // A refused action changed nothing and is not an action on record.
    let (status, _) = call(&app, &operator, "act", &format!("id={second}&action=retry"), &token).await;
    assert_eq!(status, 409);
    let (status, _) = app.api_post(&format!("/api/v1/executions/{third}/rerun")).await;
    assert_eq!(status, 200);

    let (status, log) = app.api("/api/v1/audit?limit=10").await;
    assert_eq!(status, 200, "{log}");
    let entries = log["data"].as_array().unwrap();
    let summary: Vec<(&str, &str, i64)> = entries
        .iter()
        .map(|e| {
            (
                e["role"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["applied"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("api", "rerun", 1),
            ("operator", "bulk-cancel", 2),
            ("operator", "rerun", 1),
            ("operator", "cancel", 1)
        ],
        "newest first: {log}"
    );
    let [api, bulk, rerun_entry, cancel] = &entries[..] else {
        unreachable!()
    };
    for e in [bulk, rerun_entry, cancel] {
        assert_eq!(e["session_id"], session.as_str(), "{e}");
        assert_eq!(e["address"], "127.0.0.3", "{e}");
        assert!(e["at"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(cancel["target"], first.as_str());
    assert_eq!(rerun_entry["result_id"], rerun["id"]);
    assert_eq!(bulk["target"], "type=sec.bulk");
    assert_eq!(
        (api["session_id"].is_null(), api["address"].as_str()),
        (true, Some("127.0.0.1"))
    );
    assert_eq!(api["target"], third.as_str());
    // The console shows the same log.
    let (status, _, html) = page(&app, "/audit", &token).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&session) && html.contains("bulk-cancel") && html.contains(&first),
        "{html}"
    );
    // And pages through it.
    let (_, older) = app.api("/api/v1/audit?limit=3").await;
    let cursor = older["next_cursor"].as_str().unwrap();
    let (_, rest) = app.api(&format!("/api/v1/audit?limit=3&cursor={cursor}")).await;
    assert_eq!(rest["data"][0]["action"], "cancel");
    assert_eq!(app.api("/api/v1/audit?colour=red").await.0, 400);
}

#[tokio::test]
async fn audit_entries_are_kept_as_long_as_executions() {
    let app = TestApp::spawn_with(|c| c.retention = Duration::from_secs(2)).await;
    let id = app
        .deliver_ok(&super::event(
            "evt_sec_prune",
            "customer.created",
            "cus_p",
            1_700_000_000,
        ))
        .await;
    app.wait_for(&id, "succeeded", Duration::from_secs(5)).await;
    let (status, _) = app.api_post(&format!("/api/v1/executions/{id}/rerun")).await;
    assert_eq!(status, 200);
    let (_, log) = app.api("/api/v1/audit").await;
    assert_eq!(log["data"].as_array().unwrap().len(), 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, log) = app.api("/api/v1/audit").await;
        if log["data"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still on record past the retention: {log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
