//! A real Deferral process killed with SIGKILL mid-attempt: after a restart the lease
//! expires, the rescuer records the lost attempt, and the execution finishes.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::get;
use deferral::store::Store;

/// A Stripe API stand-in: `GET /v1/events/{id}` hangs while `hang` is set, else answers the event.
async fn fake_stripe(hang: Arc<AtomicBool>) -> String {
    async fn event(State(hang): State<Arc<AtomicBool>>, Path(id): Path<String>) -> axum::Json<serde_json::Value> {
        while hang.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        axum::Json(serde_json::from_str(&support::event(&id, "customer.created", "cus_crash", 1_700_000_000)).unwrap())
    }
    let app = axum::Router::new()
        .route("/v1/events/{id}", get(event))
        .with_state(hang);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Starts the binary and returns it with its base URL once it listens.
/// The process, killed if the test ends early (a failed assertion must not leave it running).
struct Deferral(Child);

impl Drop for Deferral {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(database_url: &str, stripe: &str) -> (Deferral, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_deferral"))
        .env("DATABASE_URL", database_url)
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("STRIPE_WEBHOOK_SECRET", support::SECRET)
        .env("STRIPE_SECRET_KEY", "sk_test_crash")
        .env("STRIPE_API_BASE", stripe)
        .env("DEFERRAL_LEASE", "1s")
        .env("DEFERRAL_POLL_INTERVAL", "100ms")
        .env("DEFERRAL_RETRY_INITIAL_INTERVAL", "100ms")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start deferral");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("deferral exited before listening").unwrap();
        if let Some(i) = line.find("listening on http://") {
            break line[i + "listening on http://".len()..].trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Deferral(child), format!("http://{addr}"))
}

async fn wait_for(store: &Store, id: &str, state: &str) -> deferral::store::ExecutionRow {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(row) = store.execution(id).await.unwrap()
            && row.state == state
        {
            return row;
        }
        assert!(Instant::now() < deadline, "{id} never became {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_killed_worker_loses_its_attempt_and_the_execution_still_finishes() {
    let (database_url, _dir) = support::fresh_database().await;
    let hang = Arc::new(AtomicBool::new(true));
    let stripe = fake_stripe(hang.clone()).await;

    let (mut first, url) = spawn(&database_url, &stripe);
    // A handled type, so the handler re-fetches the event from the (hanging) API.
    let body = support::event("evt_crash", "customer.created", "cus_crash", 1_700_000_000);
    let header =
        deferral::webhook::signature::header_for(support::SECRET, chrono::Utc::now().timestamp(), body.as_bytes());
    let resp = reqwest::Client::new()
        .post(format!("{url}/webhooks/stripe"))
        .header("Stripe-Signature", header)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.json::<serde_json::Value>().await.unwrap()["execution_id"]
        .as_str()
        .unwrap()
        .to_string();

    let store = Store::open(&database_url).await.unwrap();
    wait_for(&store, &id, "running").await;
    first.0.kill().unwrap(); // SIGKILL: no shutdown code runs
    first.0.wait().unwrap();
    assert_eq!(store.execution(&id).await.unwrap().unwrap().state, "running");

    hang.store(false, Ordering::SeqCst);
    let (mut second, _) = spawn(&database_url, &stripe);
    let row = wait_for(&store, &id, "succeeded").await;
    assert_eq!(row.attempts, 2);
    let attempts = store.attempts(&id).await.unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0].outcome, "lost");
    assert!(attempts[0].error_message.as_deref().unwrap().contains("lease expired"));
    assert_eq!(attempts[1].outcome, "succeeded");
    assert_eq!(row.source.as_deref(), Some("api"));

    // SIGTERM: a clean, prompt exit.
    let started = Instant::now();
    sigterm(second.0.id());
    let status = second.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

fn sigterm(pid: u32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}
