//! The console's server functions and pages refuse callers without a session, and the login
//! that opens one is checked, rate limited and revocable.

mod support;

use std::time::Duration;

use support::{TestApp, event};

/// Every data server function, with a body it would accept from a signed-in caller.
const DATA_FUNCTIONS: [(&str, &str, &str); 8] = [
    (
        "list_executions",
        "application/json",
        r#"{"filter":{"livemode":null,"types":[],"api_version":null,"statuses":[],"q":null,"from":null,"to":null,"cursor":null,"limit":null}}"#,
    ),
    ("get_execution", "application/x-www-form-urlencoded", "id=EXECUTION"),
    ("facets", "application/x-www-form-urlencoded", ""),
    ("list_records", "application/json", r#"{"filter":{"kind":"customers"}}"#),
    ("get_object", "application/x-www-form-urlencoded", "id=cus_1"),
    ("act", "application/x-www-form-urlencoded", "id=EXECUTION&action=cancel"),
    (
        "bulk_preview",
        "application/x-www-form-urlencoded",
        "action=cancel&query=",
    ),
    (
        "bulk_apply",
        "application/x-www-form-urlencoded",
        "action=cancel&query=cursor%3Db999999",
    ),
];

async fn call(app: &TestApp, name: &str, content_type: &str, body: &str, session: Option<&str>) -> (u16, String) {
    let mut req = app
        .client
        .post(format!("{}/console/fn/{name}", app.url))
        .header("content-type", content_type)
        .body(body.to_string());
    if let Some(token) = session {
        req = req.header("cookie", format!("deferral_session={token}"));
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// A scheduled execution that stays scheduled (its event runs an hour from now).
async fn scheduled_execution(app: &TestApp) -> String {
    let created = chrono::Utc::now().timestamp() + 3600;
    let id = app
        .deliver_ok(&event("evt_console_1", "customer.created", "cus_1", created))
        .await;
    app.wait_for(&id, "scheduled", Duration::from_secs(5)).await;
    id
}

async fn spawn() -> TestApp {
    TestApp::spawn_with(|c| c.process_delay = Duration::from_secs(1)).await
}

#[tokio::test]
async fn server_functions_answer_401_without_a_session_and_change_nothing() {
    let app = spawn().await;
    let id = scheduled_execution(&app).await;
    for (name, content_type, body) in DATA_FUNCTIONS {
        let body = body.replace("EXECUTION", &id);
        for session in [None, Some("garbage"), Some("4102444800.00.forged")] {
            let (status, text) = call(&app, name, content_type, &body, session).await;
            assert_eq!(status, 401, "{name} with {session:?}: {text}");
            assert!(text.contains("SignedOut"), "{name}: {text}");
        }
    }
    // The cancel and bulk cancel above were refused: the execution is still scheduled.
    assert_eq!(app.store.execution(&id).await.unwrap().unwrap().state, "scheduled");

    // The same calls with a session are answered.
    let token = app.log_in().await;
    for (name, content_type, body) in DATA_FUNCTIONS
        .into_iter()
        .filter(|(n, ..)| !n.starts_with("bulk_apply"))
    {
        let body = body.replace("EXECUTION", &id);
        let (status, text) = call(&app, name, content_type, &body, Some(&token)).await;
        assert!(status == 200 || status == 302, "{name}: {status} {text}");
    }
    assert_eq!(app.store.execution(&id).await.unwrap().unwrap().state, "cancelled");
}

#[tokio::test]
async fn pages_redirect_to_the_login_page_without_a_session() {
    let app = spawn().await;
    for (path, next) in [
        ("/", "%2F"),
        (
            "/?status=failed&type=invoice.paid",
            "%2F%3Fstatus%3Dfailed%26type%3Dinvoice.paid",
        ),
        ("/executions/exe_x", "%2Fexecutions%2Fexe_x"),
        ("/bulk?action=rerun", "%2Fbulk%3Faction%3Drerun"),
    ] {
        let resp = app.client.get(format!("{}{path}", app.url)).send().await.unwrap();
        assert_eq!(resp.status(), 302, "{path}");
        assert_eq!(
            resp.headers()["location"],
            format!("/login?next={next}").as_str(),
            "{path}"
        );
    }
    let token = app.log_in().await;
    let resp = app
        .client
        .get(format!("{}/?status=failed", app.url))
        .header("cookie", format!("deferral_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("No executions match this filter."));
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_logout_revokes_it() {
    let app = TestApp::spawn_with(|c| c.insecure_cookies = true).await;
    let resp = app
        .client
        .post(format!("{}/console/fn/login", app.url))
        .header("accept", "text/html")
        .form(&[("password", "test-password"), ("next", "/executions/x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "/executions/x");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "DEFERRAL_INSECURE_COOKIES: {cookie}");
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("deferral_session=")
        .to_string();

    // `next` never leaves the site.
    let resp = app
        .client
        .post(format!("{}/console/fn/login", app.url))
        .header("accept", "text/html")
        .form(&[("password", "test-password"), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["location"], "/");

    let (status, _) = call(&app, "facets", "application/x-www-form-urlencoded", "", Some(&token)).await;
    assert_eq!(status, 200);
    let resp = app
        .client
        .post(format!("{}/console/fn/logout", app.url))
        .header("cookie", format!("deferral_session={token}"))
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let (status, _) = call(&app, "facets", "application/x-www-form-urlencoded", "", Some(&token)).await;
    assert_eq!(status, 401, "the token was revoked");
}

#[tokio::test]
async fn failed_logins_are_rate_limited() {
    let app = spawn().await;
    let attempt = |password: &'static str| {
        let app = &app;
        async move {
            let resp = app
                .client
                .post(format!("{}/console/fn/login", app.url))
                .form(&[("password", password)])
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    for _ in 0..10 {
        let (status, body) = attempt("wrong").await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("WrongPassword"), "{body}");
    }
    // Even the right password waits until the window has moved on.
    let (status, body) = attempt("test-password").await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("TooManyAttempts"), "{body}");
}

#[tokio::test]
async fn refused_actions_and_bad_input_are_clear_errors() {
    let app = spawn().await;
    let id = scheduled_execution(&app).await;
    let token = app.log_in().await;
    let (status, body) = call(
        &app,
        "act",
        "application/x-www-form-urlencoded",
        &format!("id={id}&action=rerun"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("cannot rerun: the execution is scheduled"), "{body}");
    let (status, body) = call(
        &app,
        "act",
        "application/x-www-form-urlencoded",
        "id=nope&action=cancel",
        Some(&token),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = call(
        &app,
        "act",
        "application/x-www-form-urlencoded",
        &format!("id={id}&action=explode"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(
        &app,
        "bulk_preview",
        "application/x-www-form-urlencoded",
        "action=cancel&query=colour%3Dred",
        Some(&token),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown filter parameter"), "{body}");
    let (status, body) = call(
        &app,
        "bulk_apply",
        "application/x-www-form-urlencoded",
        "action=cancel&query=",
        Some(&token),
    )
    .await;
    assert_eq!(status, 400, "unbounded bulk action: {body}");
    assert_eq!(app.store.execution(&id).await.unwrap().unwrap().state, "scheduled");

    // Without JavaScript a refusal travels back to the page in the redirect.
    let resp = app
        .client
        .post(format!("{}/console/fn/act", app.url))
        .header("cookie", format!("deferral_session={token}"))
        .header("accept", "text/html")
        .header("referer", format!("{}/executions/{id}", app.url))
        .form(&[("id", id.as_str()), ("action", "rerun")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains("__err="), "{location}");
    let page = app
        .client
        .get(location)
        .header("cookie", format!("deferral_session={token}"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("cannot rerun: the execution is scheduled"), "{page}");
}

#[tokio::test]
async fn pages_of_several_types_keep_newest_first_order_both_ways() {
    let app = spawn().await;
    let token = app.log_in().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let kind = if i % 2 == 0 { "e2e.a" } else { "e2e.b" };
        ids.push(
            app.deliver_ok(&event(
                &format!("evt_page_{i}"),
                kind,
                &format!("cus_{i}"),
                1_700_000_000,
            ))
            .await,
        );
    }
    app.deliver_ok(&event("evt_page_other", "e2e.c", "cus_x", 1_700_000_000))
        .await;
    ids.reverse(); // newest first
    let page = |cursor: Option<String>| {
        // The filter travels as JSON, its cursor as the enum (the URL form is `b4`).
        let cursor = cursor.map(|c| domain::model::Cursor::decode(&c).unwrap());
        let cursor = serde_json::to_string(&cursor).unwrap();
        format!(
            r#"{{"filter":{{"livemode":null,"types":["e2e.a","e2e.b"],"api_version":null,"statuses":[],"q":null,"from":null,"to":null,"cursor":{cursor},"limit":2}}}}"#
        )
    };
    let fetch = |body: String| {
        let app = &app;
        let token = token.clone();
        async move {
            let (status, text) = call(app, "list_executions", "application/json", &body, Some(&token)).await;
            assert_eq!(status, 200, "{text}");
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let shown: Vec<String> = v["page"]["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string())
                .collect();
            let cursor = |k: &str| v["page"][k].as_str().map(String::from);
            (shown, cursor("prev_cursor"), cursor("next_cursor"))
        }
    };
    let (first, prev, next) = fetch(page(None)).await;
    assert_eq!(first, ids[0..2]);
    assert!(prev.is_none());
    let (second, prev, next) = fetch(page(next)).await;
    assert_eq!(second, ids[2..4]);
    let (third, _, last) = fetch(page(next)).await;
    assert_eq!(third, ids[4..5]);
    assert!(last.is_none());
    let (back, _, _) = fetch(page(prev)).await;
    assert_eq!(back, ids[0..2], "newer from the second page");
}

/// Each server start lists the console's routes by rendering the app once with resource loading
/// switched off, and that switch is global to the process. A page rendered meanwhile by another
/// server in the same process (as when tests run side by side) must still load its data.
#[tokio::test]
async fn pages_load_while_another_server_in_the_process_lists_its_routes() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let app = spawn().await;
    let id = scheduled_execution(&app).await;
    let token = app.log_in().await;
    // Stops the starter below however this test ends (the runtime waits for blocking tasks).
    struct Stop(Arc<AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let stop = Stop(Arc::new(AtomicBool::new(false)));
    // What `Application::build` does for every server, over and over while the pages load.
    let starter = tokio::task::spawn_blocking({
        let stop = stop.0.clone();
        move || {
            while !stop.load(Ordering::Relaxed) {
                assert!(!deferral::http::route_list().is_empty());
            }
        }
    });
    let mut stalled = 0;
    for _ in 0..10 {
        let load = async {
            let resp = app
                .client
                .get(format!("{}/executions/{id}", app.url))
                .header("cookie", format!("deferral_session={token}"))
                .send()
                .await
                .unwrap();
            resp.text().await.unwrap()
        };
        match tokio::time::timeout(Duration::from_secs(3), load).await {
            Ok(page) => assert!(page.contains("state-scheduled"), "{page}"),
            Err(_) => stalled += 1,
        }
    }
    drop(stop);
    starter.await.unwrap();
    assert_eq!(stalled, 0, "page loads that never answered, of 10");
}
