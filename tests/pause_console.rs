//! The console's one-click Pause and Resume (issue 18) over real HTTP, as a browser without
//! JavaScript uses them: beside each of the overview's failing types, and Resume in the paused
//! banner, coming back to the page with the outcome shown. A viewer is shown no Pause or
//! Resume anywhere (the refusal of a viewer's forged pause is in `security_console`).

mod support;

use std::time::Duration;

use support::{TestApp, event};

/// A dispute whose object is not a dispute: its handler fails it for good, at once.
const FAILING: &str = "charge.dispute.created";
const VIEWER_PASSWORD: &str = "viewer-password";

/// The part of `html` from the element opening with `open` to the next `close`.
fn part<'a>(html: &'a str, open: &str, close: &str) -> &'a str {
    let start = html.find(open).unwrap_or_else(|| panic!("no {open} in {html}"));
    let rest = &html[start..];
    &rest[..rest.find(close).map_or(rest.len(), |end| end + close.len())]
}

/// Whether `html` holds a Pause or Resume form (`verb`) for `pattern`.
fn has_form(html: &str, verb: &str, pattern: &str) -> bool {
    html.contains(&format!("action-{verb}")) && html.contains(&format!("aria-label=\"{} {pattern}\"", title(verb)))
}

fn title(verb: &str) -> &'static str {
    if verb == "pause" { "Pause" } else { "Resume" }
}

/// Posts a Pause or Resume form as a browser without JavaScript does; answers where it is sent.
async fn click(app: &TestApp, token: &str, verb: &str, pattern: &str, back: &str) -> String {
    let resp = app
        .client
        .post(format!("{}/console/fn/set_paused", app.url))
        .header("cookie", format!("deferral_session={token}"))
        .header("accept", "text/html")
        .form(&[("pattern", pattern), ("action", verb), ("back", back)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302, "{verb} {pattern}");
    resp.headers()["location"].to_str().unwrap().to_string()
}

/// Opens the page a form sent us to: it shows the outcome, not a filter error.
async fn follow(app: &TestApp, token: &str, location: &str, notice: &str) -> String {
    let (status, html) = app.page(location, token).await;
    assert_eq!(status, 200, "{location}");
    assert!(!html.contains("unknown filter parameter"), "{location}: {html}");
    assert!(html.contains(notice), "{location}: {html}");
    html
}

async fn failed_execution(app: &TestApp) -> String {
    let created = chrono::Utc::now().timestamp();
    let id = app.deliver_ok(&event("evt_fails", FAILING, "dp_1", created)).await;
    app.wait_for(&id, "failed", Duration::from_secs(10)).await;
    id
}

#[tokio::test]
async fn a_failing_type_is_paused_in_one_click_from_the_overview() {
    let app = TestApp::spawn().await;
    failed_execution(&app).await;
    let token = app.log_in().await;
    let (_, home) = app.page("/", &token).await;
    let failing = part(&home, "<ol class=\"failing-types\"", "</ol>");
    assert!(failing.contains(FAILING), "{failing}");
    assert!(
        has_form(failing, "pause", FAILING),
        "a Pause beside the type: {failing}"
    );

    let location = click(&app, &token, "pause", FAILING, "/").await;
    assert_eq!(location, format!("/?done=pause&pattern={FAILING}"));
    let home = follow(&app, &token, &location, &format!("Paused {FAILING}")).await;
    assert_eq!(app.store.pauses().await.unwrap()[0].pattern, FAILING);
    // Now the same place offers to resume it, and says it is paused.
    let failing = part(&home, "<ol class=\"failing-types\"", "</ol>");
    assert!(failing.contains(&format!("paused ({FAILING})")), "{failing}");
    assert!(
        has_form(failing, "resume", FAILING) && !has_form(failing, "pause", FAILING),
        "{failing}"
    );

    let location = click(&app, &token, "resume", FAILING, "/").await;
    follow(&app, &token, &location, &format!("Resumed {FAILING}")).await;
    assert!(app.store.pauses().await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_viewer_is_shown_no_pause_or_resume() {
    let app = TestApp::spawn_with(|c| c.console_viewer_password = Some(VIEWER_PASSWORD.into())).await;
    failed_execution(&app).await;
    let (status, _) = app.api_post("/api/v1/event-types/charge.*/pause").await;
    assert_eq!(status, 200);
    let operator = app.log_in().await;
    let viewer = app.log_in_as(VIEWER_PASSWORD).await;
    let pages = ["/", &format!("/?type={FAILING}"), "/event-types"];
    for path in pages {
        let (status, html) = app.page(path, &operator).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            html.contains("action-resume"),
            "the operator's {path} offers Resume: {html}"
        );
    }
    let (_, types) = app.page("/event-types", &operator).await;
    assert!(types.contains("pause-pattern"), "the form to pause a pattern: {types}");

    for path in pages {
        let (status, html) = app.page(path, &viewer).await;
        assert_eq!(status, 200, "{path}");
        for control in ["action-pause", "action-resume", "pause-pattern"] {
            assert!(!html.contains(control), "the viewer's {path} has {control}: {html}");
        }
    }
    // The viewer still reads what is paused.
    let (_, home) = app.page("/", &viewer).await;
    assert!(home.contains("charge.* is paused"), "{home}");
    let (_, types) = app.page("/event-types", &viewer).await;
    assert!(types.contains("paused by api"), "{types}");
    app.stop().await;
}
