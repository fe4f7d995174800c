//! The console facing the internet (issue 14), over real HTTP: login throttling per client,
//! trusted proxies, redirect targets, cross-origin posts, security headers, sessions that hold
//! across processes and restarts, the viewer role, and the audit log.

mod processes;
mod support;

use std::time::Duration;

use proptest::prelude::*;
use reqwest::header::HeaderMap;
use support::{TestApp, event};

const PASSWORD: &str = "test-password";
const VIEWER_PASSWORD: &str = "viewer-password";

/// A client whose connections come from `source` (any 127.0.0.0/8 address works on Linux), so
/// the server sees several distinct peers.
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<std::net::IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Posts the login form as the console's script does (the answer's status tells: 200 signed
/// in, 401 wrong password, 429 throttled, 403 refused) and answers the status, headers and the
/// session token if one was set.
async fn log_in_with(
    client: &reqwest::Client,
    app: &TestApp,
    password: &str,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap, Option<String>) {
    let mut req = client
        .post(format!("{}/console/fn/login", app.url))
        .form(&[("password", password), ("next", "/")]);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let token = headers
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .and_then(|c| c.strip_prefix("deferral_session="))
        .filter(|t| !t.is_empty())
        .map(String::from);
    (status, headers, token)
}

async fn log_in(app: &TestApp, password: &str) -> String {
    let (status, _, token) = log_in_with(&app.client, app, password, &[]).await;
    assert_eq!(status, 200);
    token.expect("a session cookie")
}

/// A server function call with a session (form-encoded, as the console's forms send).
async fn call(app: &TestApp, client: &reqwest::Client, name: &str, body: &str, token: &str) -> (u16, String) {
    let resp = client
        .post(format!("{}/console/fn/{name}", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("deferral_session={token}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn page(app: &TestApp, path: &str, token: &str) -> (u16, HeaderMap, String) {
    let resp = app
        .client
        .get(format!("{}{path}", app.url))
        .header("cookie", format!("deferral_session={token}"))
        .send()
        .await
        .unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap())
}

/// A scheduled execution that stays scheduled (its event runs an hour from now).
async fn scheduled(app: &TestApp, n: u32) -> String {
    scheduled_of(app, n, "customer.created").await
}

async fn scheduled_of(app: &TestApp, n: u32, event_type: &str) -> String {
    let created = chrono::Utc::now().timestamp() + 3600;
    let id = app
        .deliver_ok(&event(
            &format!("evt_sec_{n}"),
            event_type,
            &format!("cus_{n}"),
            created,
        ))
        .await;
    app.wait_for(&id, "scheduled", Duration::from_secs(5)).await;
    id
}

async fn spawn() -> TestApp {
    TestApp::spawn_with(|c| c.process_delay = Duration::from_secs(1)).await
}

#[tokio::test]
async fn an_outsiders_failed_logins_do_not_lock_out_an_operator_elsewhere() {
    let app = spawn().await;
    let attacker = client_from("127.0.0.2");
    let mut throttled = 0;
    for _ in 0..12 {
        let (status, headers, _) = log_in_with(&attacker, &app, "guess", &[]).await;
        if status == 429 {
            throttled += 1;
            let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=3).contains(&wait), "retry after {wait} s");
        } else {
            assert_eq!(status, 401);
        }
    }
    assert_eq!(throttled, 2, "ten tries at once, then the attacker waits");
    // Even the right password waits, from the attacker's address.
    let (status, _, token) = log_in_with(&attacker, &app, PASSWORD, &[]).await;
    assert_eq!((status, token), (429, None));
    // The operator at another address is not affected.
    let (status, _, token) = log_in_with(&client_from("127.0.0.3"), &app, PASSWORD, &[]).await;
    assert_eq!(status, 200);
    assert!(token.is_some());
}

#[tokio::test]
async fn operators_sharing_an_address_are_not_throttled_by_their_own_logins() {
    let app = spawn().await;
    let office = client_from("127.0.0.5");
    for n in 0..25 {
        let (status, _, token) = log_in_with(&office, &app, PASSWORD, &[]).await;
        assert_eq!((n, status), (n, 200), "correct logins spend no budget");
        assert!(token.is_some());
    }
    // A few typos among them do not hold the office either.
    for _ in 0..3 {
        let (status, ..) = log_in_with(&office, &app, "typo", &[]).await;
        assert_eq!(status, 401);
    }
    let (status, ..) = log_in_with(&office, &app, PASSWORD, &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let app = TestApp::spawn_with(|c| {
        c.trusted_proxies = deferral::config::TrustedProxies::parse("127.0.0.4").unwrap();
    })
    .await;
    // Not a proxy: a made-up X-Forwarded-For neither escapes its own throttle…
    let direct = client_from("127.0.0.2");
    let mut statuses = Vec::new();
    for i in 0..12 {
        let claimed = format!("198.51.100.{i}");
        let (status, ..) = log_in_with(&direct, &app, "guess", &[("x-forwarded-for", &claimed)]).await;
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 429, 429],
        "wrong passwords, then throttled"
    );
    // …nor spends the budget of the address it claims (spent above as 198.51.100.0–11).
    let proxy = client_from("127.0.0.4");
    let (status, _, token) = log_in_with(&proxy, &app, PASSWORD, &[("x-forwarded-for", "198.51.100.3")]).await;
    assert_eq!(status, 200);
    assert!(token.is_some(), "the operator behind the proxy logs in");
    // Through the proxy, each forwarded client has its own budget.
    for _ in 0..11 {
        log_in_with(&proxy, &app, "guess", &[("x-forwarded-for", "203.0.113.5")]).await;
    }
    let (status, ..) = log_in_with(&proxy, &app, PASSWORD, &[("x-forwarded-for", "203.0.113.5")]).await;
    assert_eq!(status, 429);
    let (status, ..) = log_in_with(&proxy, &app, PASSWORD, &[("x-forwarded-for", "1.2.3.4, 203.0.113.6")]).await;
    assert_eq!(
        status, 200,
        "the client's own claim left of the proxy's entry is not believed"
    );
}

#[tokio::test]
async fn a_forwarded_request_from_an_unlisted_proxy_is_warned_about_once() {
    let (url, dir) = support::fresh_database().await;
    let mut server = processes::Process::spawn(&url, dir.path(), "unlisted-proxy", &[("DEFERRAL_TRUSTED_PROXIES", "")]);
    server.ready(Duration::from_secs(30)).await;
    let client = client_from("127.0.0.1");
    let said = |server: &processes::Process| server.log_text().matches("DEFERRAL_TRUSTED_PROXIES is empty").count();
    let login = |forwarded: Option<&'static str>| {
        let mut req = client
            .post(format!("{}/console/fn/login", server.url))
            .form(&[("password", "guess"), ("next", "/")]);
        if let Some(forwarded) = forwarded {
            req = req.header("x-forwarded-for", forwarded);
        }
        async move { assert_eq!(req.send().await.unwrap().status(), 401) }
    };
    login(None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(said(&server), 0, "no header, nothing to say");
    login(Some("203.0.113.5")).await;
    login(Some("203.0.113.6")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(said(&server), 1, "once: {}", server.log_text());
}

#[tokio::test]
async fn login_redirects_stay_on_this_site_and_never_panic() {
    let app = spawn().await;
    for (next, expected) in [
        ("/executions/exe_1?status=failed", "/executions/exe_1?status=failed"),
        ("/\t/evil.example/", "/"),
        ("/\n/evil.example/", "/"),
        ("/ /evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("\\/evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\u{7f}", "/"),
        ("/caf\u{e9}", "/"),
        ("", "/"),
    ] {
        let resp = app
            .client
            .post(format!("{}/console/fn/login", app.url))
            .header("accept", "text/html")
            .form(&[("password", PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302, "{next:?}");
        assert_eq!(resp.headers()["location"], expected, "{next:?}");
    }
    // The login page carries `next` through, whatever it holds.
    for query in ["next=/%7F", "next=/%09/evil.example/", "next=%00", "next=%E2%80%AE"] {
        let resp = app
            .client
            .get(format!("{}/login?{query}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{query}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    /// Whatever `next` holds, the login goes to a header-safe path of this site: the input
    /// itself, or `/`. Browsers resolve the target as the WHATWG URL parser does (`url`).
    #[test]
    fn the_redirect_check_keeps_every_target_on_this_site(
        next in prop_oneof![
            any::<String>(),
            "[/\\\\\t\n\r \u{7f}\u{a0}%a-z0-9.:@?#&=]{0,16}",
            "/[/\\\\\t\n\r ]{0,3}evil\\.example[/a-z]{0,4}",
        ]
    ) {
        let target = app::query::safe_next(&next);
        prop_assert!(target == "/" || target == next);
        prop_assert!(reqwest::header::HeaderValue::from_str(&target).is_ok(), "{target:?}");
        let base = url::Url::parse("https://console.example/login").unwrap();
        let resolved = base.join(&target).unwrap();
        prop_assert_eq!(resolved.host_str(), Some("console.example"), "{:?} -> {}", target, resolved);
        prop_assert_eq!(resolved.scheme(), "https");
    }
}

#[tokio::test]
async fn cross_origin_posts_are_refused_with_and_without_javascript() {
    let app = spawn().await;
    let id = scheduled(&app, 1).await;
    let token = log_in(&app, PASSWORD).await;
    let host = app.url.trim_start_matches("http://").to_string();
    for (content_type, accept) in [
        ("application/x-www-form-urlencoded", "text/html"), // a plain form post
        ("application/x-www-form-urlencoded", "*/*"),       // the wasm client
    ] {
        for cross in [
            vec![("origin", "https://evil.example")],
            vec![("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")],
            vec![("sec-fetch-site", "same-site")],
            vec![("origin", "null")],
        ] {
            let mut req = app
                .client
                .post(format!("{}/console/fn/act", app.url))
                .header("content-type", content_type)
                .header("accept", accept)
                .header("cookie", format!("deferral_session={token}"))
                .body(format!("id={id}&action=cancel"));
            for (k, v) in &cross {
                req = req.header(*k, *v);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 403, "{cross:?}");
            // The refusal is a console answer too: not to be framed, sniffed or cached.
            assert_security_headers(resp.headers(), &format!("refused {cross:?}"));
            assert!(resp.text().await.unwrap().contains("cross-origin"));
        }
    }
    assert_eq!(app.store.execution(&id).await.unwrap().unwrap().state, "scheduled");
    // Login from another site sets no cookie.
    let (status, headers, _) = log_in_with(&app.client, &app, PASSWORD, &[("origin", "https://evil.example")]).await;
    assert_eq!(status, 403);
    assert!(headers.get("set-cookie").is_none());
    assert_security_headers(&headers, "a refused login");
    // The console's own pages post fine.
    let origin = app.url.clone();
    let (status, _, cookie) = log_in_with(
        &app.client,
        &app,
        PASSWORD,
        &[("origin", &origin), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(status, 200);
    let resp = app
        .client
        .post(format!("{}/console/fn/act", app.url))
        .header("origin", &origin)
        .header("host", &host)
        .header("cookie", format!("deferral_session={}", cookie.unwrap()))
        .form(&[("id", id.as_str()), ("action", "cancel")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(app.store.execution(&id).await.unwrap().unwrap().state, "cancelled");
}

fn assert_security_headers(headers: &HeaderMap, what: &str) -> String {
    let csp = headers["content-security-policy"].to_str().unwrap().to_string();
    for part in [
        "'wasm-unsafe-eval'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{what}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(headers["referrer-policy"], "same-origin", "{what}");
    assert_eq!(headers["cache-control"], "no-store", "{what}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a script nonce");
    nonce.to_string()
}

#[tokio::test]
async fn console_answers_carry_a_csp_with_the_scripts_nonce_and_security_headers() {
    let app = spawn().await;
    let token = log_in(&app, PASSWORD).await;
    let mut nonces = Vec::new();
    for path in ["/login", "/", "/audit", "/no-such-page"] {
        let (status, headers, html) = page(&app, path, &token).await;
        assert!(status == 200 || status == 404, "{path}: {status}");
        let nonce = assert_security_headers(&headers, path);
        // Every inline or module script Leptos wrote carries this response's nonce.
        let scripts: Vec<&str> = html.split("<script").skip(1).collect();
        assert!(!scripts.is_empty(), "{path}: the hydration scripts");
        for script in scripts {
            let tag = &script[..script.find('>').unwrap()];
            assert!(tag.contains(&format!("nonce=\"{nonce}\"")), "{path}: <script{tag}>");
        }
        nonces.push(nonce);
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 4, "a new nonce per response");
    // Server-function answers too, refusals included.
    let (status, headers) = {
        let resp = app
            .client
            .post(format!("{}/console/fn/facets", app.url))
            .header("cookie", format!("deferral_session={token}"))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.headers().clone())
    };
    assert_eq!(status, 200);
    assert_security_headers(&headers, "a server function");
    let resp = app
        .client
        .post(format!("{}/console/fn/facets", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_security_headers(resp.headers(), "a refusal");
}

#[tokio::test]
async fn session_cookies_are_secure_unless_insecure_cookies_is_set() {
    let app = spawn().await;
    let (_, headers, _) = log_in_with(&app.client, &app, PASSWORD, &[]).await;
    let cookie = headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("; Secure") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let dev = TestApp::spawn_with(|c| c.insecure_cookies = true).await;
    let (_, headers, _) = log_in_with(&dev.client, &dev, PASSWORD, &[]).await;
    assert!(!headers["set-cookie"].to_str().unwrap().contains("Secure"));
}

#[path = "security_console/sessions.rs"]
mod sessions;
