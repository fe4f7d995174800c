//! The first five minutes: `deferral trigger` sends signed sample events that end in
//! records, `deferral demo` fills a fresh database with variety, `deferral dev` generates
//! the webhook secret `trigger` then finds, and production refuses to invent one.

mod support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deferral::fixtures::KNOWN_TYPES;
use deferral::store::Store;
use serde_json::Value;
use support::{SECRET, TestApp};
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(20);
const BIN: &str = env!("CARGO_BIN_EXE_deferral");

/// The binary with none of the settings a developer's shell may hold.
fn deferral(cwd: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.current_dir(cwd).kill_on_drop(true);
    for var in [
        "STRIPE_WEBHOOK_SECRET",
        "STRIPE_SECRET_KEY",
        "DATABASE_URL",
        "DEFERRAL_URL",
        "DEFERRAL_CONSOLE_PASSWORD",
        "DEFERRAL_CONSOLE_VIEWER_PASSWORD",
        "DEFERRAL_INSECURE_COOKIES",
        "DEFERRAL_SESSION_SECRET",
        "RUST_BACKTRACE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "info");
    cmd
}

async fn output(cmd: &mut tokio::process::Command) -> (Output, String, String) {
    let out = cmd.output().await.expect("run deferral");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out, stdout, stderr)
}

/// The execution ids `trigger` printed.
fn executions(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.split("→ execution ").nth(1))
        .map(|s| s.trim().to_string())
        .collect()
}

/// Whether the record an event of this type should leave exists.
async fn has_record(store: &Store, ty: &str, event_id: &str, object: &Value) -> bool {
    let id = object["id"].as_str().unwrap_or_default();
    let notified = |kind: &'static str| async move {
        store
            .notifications_for(event_id)
            .await
            .unwrap()
            .iter()
            .any(|n| n.kind == kind)
    };
    match ty {
        "customer.subscription.trial_will_end" => notified("trial_ending").await,
        t if t.starts_with("customer.subscription.") => store.subscription(id).await.unwrap().is_some(),
        t if t.starts_with("customer.") => store.customer(id).await.unwrap().is_some(),
        "invoice.payment_failed" => {
            // `trigger` sends the newest API version, whose invoice names no charge: the row is
            // found by its invoice.
            let customer = object["customer"].as_str().unwrap();
            let failures = store.customer_payment_failures(customer).await.unwrap();
            failures.iter().any(|f| f.invoice.as_deref() == Some(id)) && notified("payment_failed").await
        }
        "invoice.upcoming" => notified("upcoming_charge").await,
        "invoice.finalized" | "invoice.paid" => notified("invoice_email").await,
        "payment_intent.payment_failed" => {
            let charge = object["last_payment_error"]["charge"].as_str().unwrap();
            store.payment_failure(charge).await.unwrap().is_some()
        }
        "charge.failed" => store.payment_failure(id).await.unwrap().is_some(),
        t if t.starts_with("charge.dispute.") => store.dispute(id).await.unwrap().is_some(),
        other => panic!("no expectation for {other}"),
    }
}

#[tokio::test]
async fn trigger_sends_every_known_type_and_each_ends_in_its_record() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    for ty in KNOWN_TYPES {
        let (out, stdout, stderr) =
            output(deferral(dir.path()).args(["trigger", ty, "--url", &app.url, "--secret", SECRET])).await;
        assert!(out.status.success(), "{ty}: {stderr}");
        let ids = executions(&stdout);
        assert_eq!(ids.len(), 1, "{stdout}");
        assert!(
            stdout.contains(&format!("{}/executions/{}", app.url, ids[0])),
            "a console link: {stdout}"
        );
        let row = app.wait_for(&ids[0], "succeeded", WAIT).await;
        let payload: Value =
            serde_json::from_str(&app.store.event_payload(&row.event_id).await.unwrap().unwrap()).unwrap();
        assert!(
            has_record(&app.store, ty, &row.event_id, &payload["data"]["object"]).await,
            "{ty}: {row:?}"
        );
    }
}

#[tokio::test]
async fn trigger_sends_several_live_events_of_another_version() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = output(
        deferral(dir.path())
            .args([
                "trigger",
                "customer.created",
                "--url",
                &app.url,
                "--count",
                "3",
                "--livemode",
                "--api-version",
                "2023-10-16",
            ])
            .env("STRIPE_WEBHOOK_SECRET", format!("{SECRET},whsec_old")),
    )
    .await;
    assert!(out.status.success(), "{stderr}");
    let ids = executions(&stdout);
    assert_eq!(ids.len(), 3, "{stdout}");
    for id in ids {
        let row = app.wait_for(&id, "succeeded", WAIT).await;
        assert!(row.livemode);
        assert_eq!(row.api_version.as_deref(), Some("2023-10-16"));
    }
}

#[tokio::test]
async fn trigger_refuses_unknown_types_and_missing_secrets_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _, stderr) =
        output(deferral(dir.path()).args(["trigger", "customer.exploded", "--secret", SECRET])).await;
    assert!(!out.status.success());
    assert!(stderr.contains("unknown event type `customer.exploded`"), "{stderr}");
    assert!(
        stderr.contains("invoice.payment_failed") && stderr.contains("charge.dispute.closed"),
        "{stderr}"
    );

    let (out, _, stderr) = output(deferral(dir.path()).args(["trigger", "customer.created"])).await;
    assert!(!out.status.success());
    assert!(
        stderr.contains("no webhook secret") && stderr.contains("deferral dev"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("no webhook secret").count(),
        1,
        "the error is printed once: {stderr}"
    );

    // A server that refuses the signature: its reason is shown.
    let app = TestApp::spawn().await;
    let (out, _, stderr) = output(deferral(dir.path()).args([
        "trigger",
        "customer.created",
        "--url",
        &app.url,
        "--secret",
        "whsec_wrong",
    ]))
    .await;
    assert!(!out.status.success());
    assert!(
        stderr.contains("Deferral refused the event (400 Bad Request): no v1 signature matches"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------- dev secret and production

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// A `deferral` server process; killed when dropped.
struct Server {
    /// Held so the process is killed when the server is dropped.
    _child: tokio::process::Child,
    url: String,
    stdout: Vec<String>,
    /// Every line it wrote to stderr so far (the terminal and the structured log), as it comes.
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `deferral <args>` and waits for it to answer /healthz, keeping what it printed.
    async fn start(cwd: &Path, database_url: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let addr = free_addr();
        let mut cmd = deferral(cwd);
        cmd.args(args)
            .env("DATABASE_URL", database_url)
            .env("LEPTOS_SITE_ADDR", &addr);
        cmd.envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start deferral");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = errors.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        let url = format!("http://{addr}");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stdout = Vec::new();
        let deadline = Instant::now() + WAIT;
        let client = reqwest::Client::new();
        loop {
            // What it prints comes before it listens.
            while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_millis(50), lines.next_line()).await {
                stdout.push(line);
            }
            if client
                .get(format!("{url}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return Server {
                    _child: child,
                    url,
                    stdout,
                    stderr,
                };
            }
            assert!(Instant::now() < deadline, "deferral did not start: {stdout:?}");
        }
    }
}

#[tokio::test]
async fn dev_generates_a_secret_that_trigger_finds_and_keeps_it() {
    let (url, dir) = support::fresh_database().await;
    let server = Server::start(dir.path(), &url, &["dev"], &[]).await;
    let secret = server
        .stdout
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("whsec_dev_"))
        .expect("the secret is printed")
        .to_string();
    assert!(
        server
            .stdout
            .iter()
            .any(|l| l.contains("deferral trigger customer.created")),
        "{:?}",
        server.stdout
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".deferral-dev-secret"))
            .unwrap()
            .trim(),
        secret
    );

    // Zero configuration: trigger reads the secret dev wrote.
    let (out, stdout, stderr) =
        output(deferral(dir.path()).args(["trigger", "customer.created", "--url", &server.url])).await;
    assert!(out.status.success(), "{stderr}");
    let id = &executions(&stdout)[0];
    let store = Store::open(&url).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while store.execution(id).await.unwrap().unwrap().state != "succeeded" {
        assert!(Instant::now() < deadline, "the triggered event was not processed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        store
            .execution(id)
            .await
            .unwrap()
            .unwrap()
            .result
            .unwrap()
            .starts_with("customer cus_")
    );
    drop(server);

    // A restart keeps the secret, so senders keep working.
    let again = Server::start(dir.path(), &url, &["dev"], &[]).await;
    assert!(again.stdout.iter().any(|l| l.trim() == secret), "{:?}", again.stdout);

    // A configured secret wins over the generated one.
    drop(again);
    let configured = Server::start(dir.path(), &url, &["dev"], &[("STRIPE_WEBHOOK_SECRET", SECRET)]).await;
    assert!(
        !configured.stdout.iter().any(|l| l.contains("whsec_dev_")),
        "{:?}",
        configured.stdout
    );
}

#[tokio::test]
async fn production_never_invents_a_secret() {
    let (url, dir) = support::fresh_database().await;

    // A development secret is refused at start, with the reason.
    let (out, _, stderr) = output(
        deferral(dir.path())
            .arg("serve")
            .env("DATABASE_URL", &url)
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("STRIPE_WEBHOOK_SECRET", "whsec_dev_0123456789abcdef"),
    )
    .await;
    assert!(!out.status.success());
    assert!(
        stderr.contains("STRIPE_WEBHOOK_SECRET holds a development secret") && stderr.contains("Stripe dashboard"),
        "{stderr}"
    );

    // Without a secret the server runs, but its webhook endpoint refuses deliveries and says why.
    let server = Server::start(dir.path(), &url, &[], &[]).await;
    assert!(!dir.path().join(".deferral-dev-secret").exists());
    let body = support::event(
        "evt_prod_1",
        "customer.created",
        "cus_1",
        chrono::Utc::now().timestamp(),
    );
    let signature = deferral::webhook::signature::header_for(SECRET, chrono::Utc::now().timestamp(), body.as_bytes());
    let resp = reqwest::Client::new()
        .post(format!("{}/webhooks/stripe", server.url))
        .header("Stripe-Signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let answer: Value = resp.json().await.unwrap();
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("STRIPE_WEBHOOK_SECRET is not set"),
        "{answer}"
    );
}

/// A structured log line (`tracing`'s format: an RFC 3339 time first), colours taken out.
fn log_line(line: &str) -> Option<String> {
    let mut plain = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic()); // an ANSI colour: ESC [ … m
        } else {
            plain.push(c);
        }
    }
    let stamp = plain.get(..20)?;
    (stamp.as_bytes()[4] == b'-' && stamp.as_bytes()[10] == b'T' && stamp[..4].parse::<u32>().is_ok()).then_some(plain)
}

#[tokio::test]
async fn a_generated_console_password_is_printed_once_and_never_logged() {
    let (url, dir) = support::fresh_database().await;
    let env = [("STRIPE_WEBHOOK_SECRET", SECRET), ("RUST_LOG", "debug,sqlx=warn")];
    let server = Server::start(dir.path(), &url, &["serve"], &env).await;
    let announced: Vec<String> = server
        .stderr
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("the console password for this run is: "))
        .cloned()
        .collect();
    assert_eq!(announced.len(), 1, "{announced:?}");
    assert!(
        log_line(&announced[0]).is_none(),
        "printed, not logged: {}",
        announced[0]
    );
    let password = announced[0].rsplit(": ").next().unwrap().trim().to_string();
    assert!(password.len() >= 16, "{password}");

    // It is the console's password (and the log has lines about logging in to compare with).
    let client = reqwest::Client::new();
    for (attempt, expected) in [("wrong-password", 401), (password.as_str(), 200)] {
        let resp = client
            .post(format!("{}/console/fn/login", server.url))
            .form(&[("password", attempt), ("next", "/")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), expected);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = server.stderr.lock().unwrap().clone();
    let logged: Vec<String> = lines.iter().filter_map(|l| log_line(l)).collect();
    assert!(logged.len() >= 3, "the structured log is there: {lines:#?}");
    assert!(logged.iter().all(|l| !l.contains(&password)), "{logged:#?}");
    assert_eq!(lines.iter().filter(|l| l.contains(&password)).count(), 1, "{lines:#?}");
}

#[path = "first_run/cookies.rs"]
mod cookies;
#[path = "first_run/demo.rs"]
mod demo;
