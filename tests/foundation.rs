//! The service starts, answers health checks, serves the hydrating console shell, and
//! refuses to start on a database it cannot open.

mod support;

use std::process::Command;

use support::TestApp;

#[tokio::test]
async fn healthz_answers_when_the_database_does() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(format!("{}/healthz", app.url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    app.store.close().await;
    let resp = app.client.get(format!("{}/healthz", app.url)).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert!(body["reason"].as_str().unwrap().len() > 5, "{body}");
}

#[tokio::test]
async fn the_console_is_server_rendered_and_loads_its_wasm() {
    let app = TestApp::spawn().await;
    // Without a session the console sends operators to its login page, itself a hydrated page.
    let resp = app.client.get(format!("{}/", app.url)).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "/login?next=%2F");
    let resp = app.client.get(format!("{}/login", app.url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Deferral"), "{html}");
    assert!(html.contains("/pkg/deferral.js"), "no script in {html}");
    assert!(html.contains("/pkg/deferral.wasm"), "no wasm in {html}");

    // The bundle is served from /pkg/ (built by cargo-leptos before the tests run).
    for (path, mime) in [
        ("/pkg/deferral.js", "javascript"),
        ("/pkg/deferral.wasm", "application/wasm"),
    ] {
        let resp = app.client.get(format!("{}{path}", app.url)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}: run `cargo leptos build` first");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.contains(mime), "{path}: {ct}");
    }
}

#[tokio::test]
async fn unknown_pages_are_404_with_the_layout() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .get(format!("{}/no/such/page", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().contains("Page not found"));
}

#[test]
fn an_unwritable_database_fails_at_once_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_deferral"))
        .env("DATABASE_URL", "sqlite:///proc/no-such-dir/deferral.db")
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run deferral");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot open the database sqlite:///proc/no-such-dir/deferral.db"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
}
