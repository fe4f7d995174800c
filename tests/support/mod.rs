//! Test harness: the real Deferral on port 0 with a fresh database, spoken to over HTTP. It is
//! built as `deferral serve` builds it (`Application::build`) and run in the background.
//!
//! The backend follows `DEFERRAL_TEST_BACKEND`: `sqlite` (default; a temporary file) or
//! `postgres` (a fresh database per test on `DEFERRAL_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432`). The whole suite runs once per backend.
#![allow(dead_code)]

pub mod lock;
pub mod proxy;

use std::time::{Duration, Instant};

use deferral::config::{CommaList, Config};
use deferral::store::Store;
use deferral::webhook::signature;
use serde_json::Value;

pub const SECRET: &str = "whsec_test_0123456789";
/// The API token of test servers (tokens shorter than 16 characters are refused at start).
pub const API_TOKEN: &str = "test-token-0123456789";

pub fn backend() -> String {
    std::env::var("DEFERRAL_TEST_BACKEND").unwrap_or_else(|_| "sqlite".into())
}

/// Whether this run is on PostgreSQL; otherwise says that a PostgreSQL-only test is skipped.
pub fn on_postgres() -> bool {
    let yes = backend() == "postgres";
    if !yes {
        eprintln!("PostgreSQL only (DEFERRAL_TEST_BACKEND=postgres)");
    }
    yes
}

/// A fresh, empty database for one test; the guard keeps a temporary folder alive.
pub async fn fresh_database() -> (String, tempfile::TempDir) {
    fresh_database_on(&backend()).await
}

/// A fresh, empty database on `backend` (`sqlite` or `postgres`).
pub async fn fresh_database_on(backend: &str) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    if backend == "postgres" {
        let server =
            std::env::var("DEFERRAL_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let name = format!("deferral_test_{}", rand::random::<u64>());
        let admin = format!("{server}/postgres");
        let pool = sqlx::PgPool::connect(&admin)
            .await
            .expect("connect to PostgreSQL for tests");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .expect("create test database");
        pool.close().await;
        (format!("{server}/{name}"), dir)
    } else {
        let url = format!("sqlite://{}", dir.path().join("deferral.db").display());
        (url, dir)
    }
}

/// The defaults, with short intervals so tests never wait minutes.
pub fn test_config(database_url: &str) -> Config {
    let mut c = Config::defaults();
    c.database_url = database_url.to_string();
    c.site_addr = "127.0.0.1:0".parse().unwrap();
    c.site_root = concat!(env!("CARGO_MANIFEST_DIR"), "/target/site").into();
    c.stripe_webhook_secret = CommaList(vec![SECRET.into()]);
    c.api_token = Some(API_TOKEN.into());
    c.console_password = Some("test-password".into());
    c.retry_initial_interval = Duration::from_millis(50);
    c.retry_max_interval = Duration::from_millis(200);
    c.retry_randomization = 0.0;
    c.poll_interval = Duration::from_millis(50);
    c.lease = Duration::from_secs(2);
    c.shutdown_grace = Duration::from_secs(2);
    // Off unless a test turns it on: its list requests would mix with those a test counts.
    c.reconcile_interval = Duration::ZERO;
    c
}

pub struct TestApp {
    pub url: String,
    pub database_url: String,
    pub store: Store,
    pub client: reqwest::Client,
    running: Option<deferral::Running>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let (database_url, dir) = fresh_database().await;
        let mut config = test_config(&database_url);
        adjust(&mut config);
        Self::start(config, dir).await
    }

    /// Starts on an existing database (e.g. after a restart).
    pub async fn start(config: Config, dir: tempfile::TempDir) -> TestApp {
        let database_url = config.database_url.clone();
        let running = deferral::Application::build(config)
            .await
            .expect("start deferral")
            .spawn();
        TestApp {
            url: format!("http://{}", running.addr),
            database_url,
            store: running.store.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                // A request that never answers fails its test with this, instead of stalling the run.
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
            running: Some(running),
            _dir: dir,
        }
    }

    /// Graceful stop; returns the temporary folder so the database can be reopened.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.running.take().unwrap().stop().await.expect("clean stop");
        let TestApp { _dir, .. } = self;
        _dir
    }

    /// POSTs a body signed with the test secret, as Stripe would.
    pub async fn deliver(&self, body: &str) -> reqwest::Response {
        let header = signature::header_for(SECRET, chrono::Utc::now().timestamp(), body.as_bytes());
        self.client
            .post(format!("{}/webhooks/stripe", self.url))
            .header("Stripe-Signature", header)
            .body(body.to_string())
            .send()
            .await
            .expect("webhook request")
    }

    /// Delivers and returns the execution id, asserting a 200.
    pub async fn deliver_ok(&self, body: &str) -> String {
        let resp = self.deliver(body).await;
        let status = resp.status();
        let json: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{json}");
        json["execution_id"].as_str().expect("execution_id").to_string()
    }

    pub async fn api(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn api_post(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `/metrics` as Prometheus scrapes it (no token: test servers set none).
    pub async fn metrics(&self) -> String {
        let resp = self.client.get(format!("{}/metrics", self.url)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }

    /// Logs in to the console with the test password and returns the session token.
    pub async fn log_in(&self) -> String {
        self.log_in_as("test-password").await
    }

    /// Logs in to the console with `password` (the operator's or the viewer's) and returns the
    /// session token.
    pub async fn log_in_as(&self, password: &str) -> String {
        let resp = self
            .client
            .post(format!("{}/console/fn/login", self.url))
            .form(&[("password", password), ("next", "/")])
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success() || resp.status().is_redirection(),
            "{}",
            resp.status()
        );
        let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
        cookie
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("deferral_session=")
            .to_string()
    }

    /// A console page as the server renders it for a signed-in operator.
    pub async fn page(&self, path: &str, session: &str) -> (u16, String) {
        let resp = self
            .client
            .get(format!("{}{path}", self.url))
            .header("cookie", format!("deferral_session={session}"))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// Waits until the execution reaches `state` (or panics after `timeout`), returning its row.
    pub async fn wait_for(&self, id: &str, state: &str, timeout: Duration) -> deferral::store::ExecutionRow {
        let deadline = Instant::now() + timeout;
        loop {
            let row = self.store.execution(id).await.unwrap().expect("execution exists");
            if row.state == state {
                return row;
            }
            assert!(
                Instant::now() < deadline,
                "execution {id} is {} (wanted {state}): {row:?}",
                row.state
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits `d` and checks the execution is still `scheduled` (held by a pause), with no
    /// attempt more than before.
    pub async fn stays_scheduled(&self, id: &str, d: Duration) {
        let before = self.store.execution(id).await.unwrap().unwrap();
        tokio::time::sleep(d).await;
        let row = self.store.execution(id).await.unwrap().unwrap();
        assert_eq!(row.state, "scheduled", "held execution ran: {row:?}");
        assert_eq!(row.attempts, before.attempts, "{row:?}");
    }
}

/// A minimal valid Stripe event body.
pub fn event(id: &str, event_type: &str, object_id: &str, created: i64) -> String {
    serde_json::json!({
        "id": id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "livemode": false,
        "type": event_type,
        "data": { "object": { "id": object_id, "object": "customer" } },
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null }
    })
    .to_string()
}

/// The entry of `event_type` in the answer of `GET /api/v1/event-types`.
pub fn type_entry<'a>(list: &'a Value, event_type: &str) -> &'a Value {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["event_type"] == event_type)
        .unwrap_or_else(|| panic!("{event_type} not listed: {list}"))
}
