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
    // The pages name the bundle under a versioned path: `/pkg/{digest of the files}/…`.
    let at = html.find("/pkg/").expect("the page names its bundle");
    let version = html[at + 5..].split('/').next().unwrap().to_string();
    assert_eq!(version.len(), 16, "a content digest, not a fixed name: {version}");
    for file in ["deferral.js", "deferral.wasm", "deferral.css"] {
        assert!(html.contains(&format!("/pkg/{version}/{file}")), "no {file} in {html}");
    }

    // Served from there (built by cargo-leptos before the tests run), kept by browsers for a
    // year, compressed for clients that accept it.
    for (file, mime) in [
        ("deferral.js", "javascript"),
        ("deferral.wasm", "application/wasm"),
        ("deferral.css", "text/css"),
    ] {
        let path = format!("/pkg/{version}/{file}");
        let resp = app
            .client
            .get(format!("{}{path}", app.url))
            .header("accept-encoding", "br")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}: run `cargo leptos build` first");
        let headers = resp.headers();
        assert!(
            headers["content-type"].to_str().unwrap().contains(mime),
            "{path}: {headers:?}"
        );
        assert_eq!(
            headers["cache-control"], "public, max-age=31536000, immutable",
            "{path}"
        );
        assert_eq!(headers["content-encoding"], "br", "{path}");
        assert_eq!(
            headers["vary"], "accept-encoding",
            "{path}: caches keep one copy per encoding"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
    }
    // A file this build lacks is not kept.
    let resp = app
        .client
        .get(format!("{}/pkg/{version}/missing.js", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(
        resp.headers()
            .get("cache-control")
            .is_none_or(|c| c != "public, max-age=31536000, immutable")
    );
    // Another build's path finds nothing, rather than today's files under yesterday's name.
    let resp = app
        .client
        .get(format!("{}/pkg/0000000000000000/deferral.wasm", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
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
