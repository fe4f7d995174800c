//! The records over HTTP: `GET /api/v1/records/{kind}` and its filters, the notification
//! outbox an application drains (`GET /api/v1/notifications`, `POST …/{id}/sent`), and the
//! console's records pages and object timeline as server-rendered HTML (no JavaScript).

mod support;

use std::time::Duration;

use deferral::fixtures::Fixture;
use deferral::store::records::{Dispute, Stamp};
use serde_json::Value;
use support::TestApp;

const WAIT: Duration = Duration::from_secs(20);
/// A fixed point in time the events count from (Stripe seconds).
const T: i64 = 1_727_000_000;

fn fixture(ty: &str) -> Fixture {
    Fixture::new(ty).expect("a known type")
}

/// Delivers each event signed, as Stripe would, and waits until all succeeded.
async fn process(app: &TestApp, events: &[Fixture]) {
    let mut ids = Vec::new();
    for f in events {
        ids.push(app.deliver_ok(&f.to_json()).await);
    }
    for id in ids {
        app.wait_for(&id, "succeeded", WAIT).await;
    }
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data in {body}"))
        .iter()
        .map(|r| match &r["id"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn pending_ids(app: &TestApp) -> Vec<String> {
    let (status, body) = app.api("/api/v1/notifications?status=pending").await;
    assert_eq!(status, 200, "{body}");
    ids(&body)
}

#[tokio::test]
async fn the_outbox_marks_sent_once_refuses_unknown_ids_and_never_lists_a_sent_one_as_pending() {
    let app = TestApp::spawn().await;
    // Three messages, queued by real events in this order.
    let events = [
        fixture("invoice.upcoming").customer("cus_A").created(T),
        fixture("invoice.paid").customer("cus_B").created(T + 1),
        fixture("invoice.finalized").customer("cus_C").created(T + 2),
    ];
    for f in &events {
        process(&app, std::slice::from_ref(f)).await;
    }
    let pending = pending_ids(&app).await;
    assert_eq!(pending.len(), 3, "{pending:?}");
    // Oldest first: the order to send them in.
    let numbers: Vec<i64> = pending.iter().map(|i| i.parse().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    let first = &pending[0];

    let (status, sent) = app.api_post(&format!("/api/v1/notifications/{first}/sent")).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["status"], "sent");
    assert_eq!(sent["customer"], "cus_A");
    let sent_at = sent["sent_at"].as_str().expect("sent_at").to_string();

    // Idempotent: again answers the same notification, first sent time kept.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (status, again) = app.api_post(&format!("/api/v1/notifications/{first}/sent")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, sent);
    assert_eq!(again["sent_at"], sent_at.as_str());

    // Never pending again, on any page; listed as sent.
    assert_eq!(pending_ids(&app).await, pending[1..].to_vec());
    let (_, page) = app.api("/api/v1/notifications?status=pending&limit=1").await;
    assert_eq!(ids(&page), vec![pending[1].clone()]);
    let cursor = page["next_cursor"].as_str().expect("a second page").to_string();
    let (_, page2) = app
        .api(&format!("/api/v1/notifications?status=pending&limit=1&cursor={cursor}"))
        .await;
    assert_eq!(ids(&page2), vec![pending[2].clone()]);
    assert_eq!(page2["next_cursor"], Value::Null);
    let (_, sent_list) = app.api("/api/v1/notifications?status=sent").await;
    assert_eq!(ids(&sent_list), vec![first.clone()]);
    // The same event delivered again queues nothing new.
    let dup = app.deliver(&events[0].to_json()).await.json::<Value>().await.unwrap();
    assert_eq!(dup["duplicate"], true);
    assert_eq!(pending_ids(&app).await.len(), 2);

    // Unknown or malformed ids: 404, nothing changes.
    for bad in ["999999", "abc", "-1", "1e3"] {
        let (status, body) = app.api_post(&format!("/api/v1/notifications/{bad}/sent")).await;
        assert_eq!(status, 404, "{bad}: {body}");
        assert_eq!(body["error"], "not_found");
    }
    assert_eq!(pending_ids(&app).await.len(), 2);
    // Bad filters are refused with a reason.
    for query in ["status=done", "kind=sms", "colour=red", "cursor=x", "limit=0"] {
        let (status, body) = app.api(&format!("/api/v1/notifications?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"], "invalid_filter");
    }
    // Without the token: 401, and nothing is marked.
    let resp = app
        .client
        .post(format!("{}/api/v1/notifications/{}/sent", app.url, pending[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(pending_ids(&app).await.len(), 2);
}

/// Customers (one deleted, one delinquent, one on hold), failures with two reasons, two
/// subscriptions, an open and a closed dispute.
async fn seed_records(app: &TestApp) {
    process(
        app,
        &[
            fixture("customer.created").customer("cus_plain").created(T),
            fixture("customer.created")
                .customer("cus_late")
                .set("delinquent", true)
                .set("email", "late@example.com")
                .created(T),
            fixture("customer.created").customer("cus_held").created(T),
            fixture("customer.deleted")
                .customer("cus_gone")
                .set("delinquent", false)
                .created(T),
            fixture("charge.failed")
                .object_id("ch_funds")
                .customer("cus_late")
                .set("outcome.reason", "insufficient_funds")
                .set("failure_code", "card_declined")
                .created(T + 100),
            fixture("charge.failed")
                .object_id("ch_expired")
                .customer("cus_plain")
                .set("outcome.reason", "expired_card")
                .set("failure_code", "expired_card")
                .created(T + 200),
            fixture("customer.subscription.created")
                .object_id("sub_active")
                .customer("cus_plain")
                .set("status", "active")
                .created(T),
            fixture("customer.subscription.created")
                .object_id("sub_due")
                .customer("cus_late")
                .set("status", "past_due")
                .created(T),
        ],
    )
    .await;
    // Disputes name their customer only through the charge (read from Stripe); written here
    // through the store as the dispute handler writes them.
    for (id, hold, outcome) in [("dp_open", true, None), ("dp_lost", false, Some("lost"))] {
        let dispute = Dispute {
            id: id.into(),
            charge: Some(format!("ch_{id}")),
            payment_intent: None,
            customer: Some("cus_held".into()),
            amount: Some(1500),
            currency: Some("usd".into()),
            reason: Some("fraudulent".into()),
            status: outcome.unwrap_or("needs_response").into(),
            evidence_due_by: None,
            hold,
            outcome: outcome.map(Into::into),
            funds_withdrawn: false,
            funds_reinstated: false,
            livemode: false,
            stripe_updated_at: T,
            last_event_id: Some(format!("evt_{id}")),
        };
        let stamp = Stamp {
            event_id: &format!("evt_{id}"),
            created: T,
            livemode: false,
        };
        app.store.upsert_dispute(&dispute, stamp).await.unwrap();
    }
}

#[tokio::test]
async fn the_records_api_filters_each_kind_and_pages_through_all_of_them() {
    let app = TestApp::spawn().await;
    seed_records(&app).await;
    let cases: &[(&str, &[&str])] = &[
        ("customers?on_hold=true", &["cus_held"]),
        ("customers?deleted=true", &["cus_gone"]),
        ("customers?delinquent=true", &["cus_late"]),
        ("customers?q=late@example.com", &["cus_late"]),
        ("customers?on_hold=false&deleted=false&delinquent=false", &["cus_plain"]),
        ("subscriptions?status=past_due", &["sub_due"]),
        ("subscriptions?customer=cus_plain", &["sub_active"]),
        ("payment-failures?reason=insufficient_funds", &["ch_funds"]),
        ("payment-failures?customer=cus_plain", &["ch_expired"]),
        // Failed at T+100 and T+200 (UTC): a range that holds only the later one.
        ("payment-failures?from=2024-09-22T10:15:01Z", &["ch_expired"]),
        ("payment-failures?to=2024-09-22T10:15:01Z", &["ch_funds"]),
        ("disputes?state=open", &["dp_open"]),
        ("disputes?state=closed&outcome=lost", &["dp_lost"]),
        ("disputes?outcome=won", &[]),
    ];
    for (query, expected) in cases {
        let (status, body) = app.api(&format!("/api/v1/records/{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        let want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(sorted(ids(&body)), sorted(want), "{query}: {body}");
    }
    // A failure's reason and customer come back as recorded.
    let (_, body) = app
        .api("/api/v1/records/payment-failures?reason=insufficient_funds")
        .await;
    assert_eq!(body["data"][0]["customer"], "cus_late");
    assert_eq!(body["data"][0]["failed_at"], "2024-09-22T10:15:00.000Z");

    // Pages of one: every customer exactly once, then no cursor.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/records/customers?limit=1&cursor={}", urlencode(c)),
            None => "/api/v1/records/customers?limit=1".into(),
        };
        let (status, body) = app.api(&path).await;
        assert_eq!(status, 200, "{body}");
        seen.extend(ids(&body));
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(seen.len() <= 4, "paging does not end: {seen:?}");
    }
    assert_eq!(sorted(seen), ["cus_gone", "cus_held", "cus_late", "cus_plain"]);

    // Hostile or mistaken input: a clear refusal.
    for (path, status, code) in [
        ("/api/v1/records/invoices", 404, "not_found"),
        ("/api/v1/records/customers?reason=other", 400, "invalid_filter"),
        ("/api/v1/records/customers?on_hold=maybe", 400, "invalid_filter"),
        ("/api/v1/records/subscriptions?status=pending", 400, "invalid_filter"),
        ("/api/v1/records/payment-failures?from=yesterday", 400, "invalid_filter"),
        ("/api/v1/records/disputes?cursor=nodot", 400, "invalid_filter"),
        ("/api/v1/records/customers?limit=100000", 400, "invalid_filter"),
    ] {
        let (got, body) = app.api(path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["error"], code, "{path}");
    }
}

fn urlencode(s: &str) -> String {
    domain::model::encode_component(s)
}

/// A signed-in console session, as the cookie header carries it.
async fn session(app: &TestApp) -> String {
    format!("deferral_session={}", app.log_in().await)
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> String {
    let resp = app
        .client
        .get(format!("{}{path}", app.url))
        .header("cookie", cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.text().await.unwrap()
}

/// The `data-…` attribute values of the rows a page shows, in order.
fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    let needle = format!("{attribute}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

#[tokio::test]
async fn the_records_pages_filter_in_the_url_without_javascript() {
    let app = TestApp::spawn().await;
    seed_records(&app).await;
    let cookie = session(&app).await;
    let rows = |html: &str| sorted(attribute_values(html, "<tr data-id"));
    for (path, expected) in [
        ("/records/customers?on_hold=true", vec!["cus_held"]),
        ("/records/customers?deleted=true", vec!["cus_gone"]),
        ("/records/subscriptions?status=active", vec!["sub_active"]),
        ("/records/payment-failures?reason=expired_card", vec!["ch_expired"]),
        ("/records/disputes?state=open", vec!["dp_open"]),
    ] {
        let html = page(&app, &cookie, path).await;
        assert_eq!(rows(&html), expected, "{path}: {html}");
        // Each id links to its object's timeline.
        assert!(html.contains(&format!("href=\"/objects/{}\"", expected[0])), "{path}");
    }
    let html = page(&app, &cookie, "/records/customers?on_hold=perhaps").await;
    assert!(
        html.contains("role=\"alert\"") && html.contains("invalid on_hold"),
        "{html}"
    );
}

#[tokio::test]
async fn the_object_timeline_follows_the_events_created_not_their_arrival() {
    let app = TestApp::spawn().await;
    let customer = "cus_story";
    let created = fixture("customer.created").customer(customer).created(T);
    let renamed = fixture("customer.updated")
        .customer(customer)
        .set("name", "Second Name")
        .created(T + 10);
    let late = fixture("customer.updated")
        .customer(customer)
        .set("name", "Third Name")
        .set("delinquent", true)
        .created(T + 20);
    // Arrival order: the newest first, the oldest last.
    for f in [&late, &created, &renamed] {
        process(&app, std::slice::from_ref(f)).await;
    }
    let cookie = session(&app).await;
    let html = page(&app, &cookie, &format!("/objects/{customer}")).await;
    let shown = attribute_values(&html, "data-event");
    assert_eq!(
        shown,
        [created.event_id(), renamed.event_id(), late.event_id()],
        "in created order"
    );
    // The current record is the newest event's, whatever the arrival order.
    assert!(html.contains("Third Name"), "{html}");
    assert!(html.contains("3 executions in the order of the events"));
    // An unknown object says so.
    let html = page(&app, &cookie, "/objects/cus_nobody").await;
    assert!(html.contains("nothing is known about `cus_nobody`"), "{html}");
}
