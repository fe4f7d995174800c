//! One service for operator actions and one check for filters: the REST API and the console's
//! server functions, asked the same thing, answer the same refusal (the REST API's code, the
//! console's kind of error, the same message), on both backends.

mod support;

use std::time::Duration;

use app::error::ConsoleError;
use serde_json::{Value, json};
use support::{TestApp, event};

/// The console's kind of error for each of the REST API's codes.
fn kind_of_code(code: &str) -> &'static str {
    match code {
        "not_found" | "not_paused" => "NotFound",
        "refused" => "Refused",
        "forbidden" => "Forbidden",
        "unavailable" => "Unavailable",
        "internal" => "Internal",
        c if c.starts_with("invalid_") => "Invalid",
        other => panic!("a code the console has no kind for: {other}"),
    }
}

fn kind_and_message(e: &ConsoleError) -> (&'static str, String) {
    let kind = match e {
        ConsoleError::NotFound(_) => "NotFound",
        ConsoleError::Refused(_) => "Refused",
        ConsoleError::Forbidden(_) => "Forbidden",
        ConsoleError::Invalid(_) => "Invalid",
        ConsoleError::Unavailable(_) => "Unavailable",
        ConsoleError::Internal(_) => "Internal",
        other => panic!("not an action's refusal: {other:?}"),
    };
    (kind, e.to_string())
}

/// A console server function, called as the console's own client does (JSON errors).
async fn console(app: &TestApp, token: &str, name: &str, body: Body<'_>) -> (u16, Value) {
    let req = app
        .client
        .post(format!("{}/console/fn/{name}", app.url))
        .header("cookie", format!("deferral_session={token}"));
    let req = match body {
        Body::Form(pairs) => req.form(pairs),
        Body::Json(value) => req.json(&value),
    };
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

enum Body<'a> {
    Form(&'a [(&'a str, &'a str)]),
    Json(Value),
}

/// Both answered the same refusal: the same status, the code's kind, the same message.
fn same_refusal(what: &str, rest: (u16, Value), console: (u16, Value), code: &str) {
    let (rest_status, rest_body) = rest;
    let (console_status, console_body) = console;
    assert_eq!(rest_body["error"], code, "{what}: REST {rest_body}");
    assert_eq!(
        rest_status, console_status,
        "{what}: REST {rest_body}, console {console_body}"
    );
    let e: ConsoleError = serde_json::from_value(console_body.clone())
        .unwrap_or_else(|_| panic!("{what}: not a console error: {console_body}"));
    let (kind, message) = kind_and_message(&e);
    assert_eq!(kind, kind_of_code(code), "{what}: {console_body}");
    assert_eq!(message, rest_body["message"].as_str().unwrap(), "{what}");
}

#[tokio::test]
async fn the_rest_api_and_the_console_refuse_an_action_alike() {
    let app = TestApp::spawn().await;
    let created = chrono::Utc::now().timestamp();
    let done = app
        .deliver_ok(&event("evt_actions_done", "customer.created", "cus_a1", created))
        .await;
    app.wait_for(&done, "succeeded", Duration::from_secs(10)).await;
    let token = app.log_in().await;

    for (action, id, code) in [
        ("retry", done.as_str(), "refused"),
        ("cancel", done.as_str(), "refused"),
        ("rerun", "exe_missing", "not_found"),
    ] {
        let rest = app.api_post(&format!("/api/v1/executions/{id}/{action}")).await;
        let form = [("id", id), ("action", action)];
        let console = console(&app, &token, "act", Body::Form(&form)).await;
        same_refusal(&format!("{action} {id}"), rest, console, code);
    }

    for (verb, pattern, code) in [
        ("resume", "invoice.paid", "not_paused"),
        ("pause", "invoice.*x", "invalid_pattern"),
    ] {
        let rest = app.api_post(&format!("/api/v1/event-types/{pattern}/{verb}")).await;
        let form = [("pattern", pattern), ("action", verb), ("back", "/")];
        let console = console(&app, &token, "set_paused", Body::Form(&form)).await;
        same_refusal(&format!("{verb} {pattern}"), rest, console, code);
    }

    // Nothing was done, so nothing is on record.
    let (_, audit) = app.api("/api/v1/audit").await;
    assert_eq!(audit["data"], json!([]), "{audit}");
    app.stop().await;
}

/// A filter the console's list receives whole (JSON) is held to the rule a URL's filter is:
/// refused alike, with the same message (before, only its times and page size were checked).
#[tokio::test]
async fn a_filter_sent_whole_is_refused_as_the_same_filter_in_a_url() {
    let app = TestApp::spawn().await;
    let token = app.log_in().await;
    let types: Vec<String> = (0..=domain::model::MAX_FILTER_TYPES)
        .map(|i| format!("t{i}.x"))
        .collect();
    let long = "x".repeat(domain::model::MAX_FILTER_VALUE_LEN + 1);
    let cases: Vec<(&str, Value, String)> = vec![
        (
            "too many types",
            json!({ "types": types }),
            types.iter().map(|t| format!("type={t}")).collect::<Vec<_>>().join("&"),
        ),
        (
            "an account that is not one",
            json!({ "account": "acct_1';--" }),
            "account=acct_1%27%3B--".into(),
        ),
        ("a long search", json!({ "q": long }), format!("q={long}")),
        (
            "a time that is not one",
            json!({ "from": "yesterday" }),
            "from=yesterday".into(),
        ),
        ("a page too large", json!({ "limit": 100_000 }), "limit=100000".into()),
    ];
    for (what, fields, query) in cases {
        let mut filter = json!({
            "livemode": null, "types": [], "api_version": null, "statuses": [], "q": null,
            "from": null, "to": null, "cursor": null, "limit": null
        });
        for (k, v) in fields.as_object().unwrap() {
            filter[k] = v.clone();
        }
        let rest = app.api(&format!("/api/v1/executions?{query}")).await;
        let console = console(&app, &token, "list_executions", Body::Json(json!({ "filter": filter }))).await;
        same_refusal(what, rest, console, "invalid_filter");
    }
    app.stop().await;
}

/// The console's bulk cancel, through the actions service: previewed, bounded, applied once and
/// put on record once with what it changed.
#[tokio::test]
async fn bulk_actions_go_through_the_service_and_are_recorded_once() {
    let app = TestApp::spawn_with(|c| c.process_delay = Duration::from_secs(3600)).await;
    let created = chrono::Utc::now().timestamp();
    let mut ids = Vec::new();
    for i in 0..3 {
        let body = event(&format!("evt_bulk_{i}"), "invoice.paid", &format!("in_{i}"), created);
        ids.push(app.deliver_ok(&body).await);
    }
    let token = app.log_in().await;
    let form = [("action", "cancel"), ("query", "type=invoice.paid")];
    let (status, preview) = console(&app, &token, "bulk_preview", Body::Form(&form)).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["count"], 3, "{preview}");
    let bound = preview["up_to"].as_str().unwrap().to_string();
    let query = format!("type=invoice.paid&cursor={bound}");
    let form = [("action", "cancel"), ("query", query.as_str())];
    let (status, outcome) = console(&app, &token, "bulk_apply", Body::Form(&form)).await;
    assert!(status == 200 || status == 302, "{status} {outcome}");
    for id in &ids {
        assert_eq!(app.store.execution(id).await.unwrap().unwrap().state, "cancelled");
    }
    // The same bound again: nothing left to cancel, all skipped by the service's own refusal.
    let (_, again) = console(&app, &token, "bulk_apply", Body::Form(&form)).await;
    assert_eq!(
        (again["applied"].as_i64(), again["skipped"].as_i64()),
        (Some(0), Some(0)),
        "{again}"
    );
    let (_, audit) = app.api("/api/v1/audit").await;
    let entries = audit["data"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");
    assert_eq!(entries[1]["action"], "bulk-cancel");
    assert_eq!(entries[1]["applied"], 3);
    assert_eq!(entries[1]["role"], "operator");
    app.stop().await;
}
