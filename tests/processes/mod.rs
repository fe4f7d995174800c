//! Real Deferral processes (the built binary) for the PostgreSQL tests: configured through
//! the environment like in production, found by the address they log, killed with SIGKILL.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deferral::webhook::signature;
use serde_json::Value;

/// One `deferral` process; killed when dropped so a failing test leaves nothing behind.
pub struct Process {
    child: Child,
    pub name: String,
    pub url: String,
    pub log: PathBuf,
}

impl Process {
    /// Starts `deferral` on `database_url` without waiting for it; see [`Process::ready`].
    /// `name` becomes HOSTNAME, so this process's lease owners start with `{name}-`.
    pub fn spawn(database_url: &str, logs: &Path, name: &str, env: &[(&str, &str)]) -> Process {
        let log = logs.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("create log file");
        // Another build can stand in (`DEFERRAL_TEST_BINARY`), e.g. an older commit's, to compare.
        let binary = std::env::var("DEFERRAL_TEST_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_deferral").into());
        let mut cmd = Command::new(binary);
        cmd.env("DATABASE_URL", database_url)
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("LEPTOS_SITE_ROOT", concat!(env!("CARGO_MANIFEST_DIR"), "/target/site"))
            .env("STRIPE_WEBHOOK_SECRET", crate::support::SECRET)
            .env("DEFERRAL_CONSOLE_PASSWORD", "test-password")
            .env("HOSTNAME", name)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn,deferral=info,deferral::executor::worker=warn")
            .env_remove("STRIPE_SECRET_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start the deferral binary");
        Process {
            child,
            name: name.to_string(),
            url: String::new(),
            log,
        }
    }

    /// Waits until the process logs its address (it has migrated and listens).
    pub async fn ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.log_text();
            if let Some(at) = text.find("listening on http://") {
                let rest = &text[at + "listening on http://".len()..];
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                self.url = format!("http://{addr}");
                return;
            }
            if let Some(status) = self.child.try_wait().expect("poll child") {
                panic!("{} exited with {status} before listening:\n{text}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start within {timeout:?}:\n{text}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running (not exited, not killed).
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("poll child").is_none()
    }

    /// SIGSTOP (`pause`) or SIGCONT (`resume`): frozen, the process holds what it holds.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{signal} {}", self.pid());
    }

    /// SIGKILL: no shutdown, no release of leases, connections cut mid-transaction.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The WARN and ERROR lines this process logged.
    pub fn problems(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .map(String::from)
            .collect()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            // The test failed: show what this process said last.
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!("--- last lines of {} ({}):\n{tail}", self.name, self.log.display());
        }
    }
}

/// Starts `n` processes at once (so they migrate the same fresh database together).
pub async fn start(n: usize, database_url: &str, logs: &Path, env: &[(&str, &str)]) -> Vec<Process> {
    let mut all: Vec<Process> = (0..n)
        .map(|i| Process::spawn(database_url, logs, &format!("deferral-{i}"), env))
        .collect();
    for p in &mut all {
        p.ready(Duration::from_secs(60)).await;
    }
    all
}

/// POSTs `body` signed now with the test secret, as Stripe would. Transport errors
/// (refused, reset) come back as `Err`: the caller retries them like Stripe does.
pub async fn deliver(client: &reqwest::Client, url: &str, body: &str) -> Result<(u16, Value), reqwest::Error> {
    let header = signature::header_for(crate::support::SECRET, chrono::Utc::now().timestamp(), body.as_bytes());
    let resp = client
        .post(format!("{url}/webhooks/stripe"))
        .header("Stripe-Signature", header)
        .body(body.to_string())
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

/// A connection for the test's own reads, checking what the processes wrote.
pub async fn connect(database_url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(database_url)
        .await
        .expect("connect to the test database")
}

/// What the database and the processes look like, for a failure message.
/// A backend as `diagnose` shows it: state, wait event type and name, seconds in state, query.
type Backend = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<f64>,
    Option<String>,
);

pub async fn diagnose(db: &sqlx::PgPool) -> String {
    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, COUNT(*) FROM executions GROUP BY state ORDER BY state")
            .fetch_all(db)
            .await
            .unwrap_or_default();
    let running: Vec<(String, Option<String>, Option<i64>, i64)> = sqlx::query_as(
        "SELECT id, lease_owner, lease_expires_at - (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT, attempts
         FROM executions WHERE state = 'running' ORDER BY seq LIMIT 10",
    )
    .fetch_all(db)
    .await
    .unwrap_or_default();
    let backends: Vec<Backend> = sqlx::query_as(
        "SELECT state, wait_event_type, wait_event,
                EXTRACT(EPOCH FROM clock_timestamp() - state_change)::float8, left(query, 60)
         FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(db)
    .await
    .unwrap_or_default();
    format!(
        "executions by state: {states:?}\nrunning (id, owner, lease left ms, attempts): {running:?}\n\
         the processes' backends (state, wait, event, seconds in state, query): {backends:#?}"
    )
}

/// Waits until no execution is scheduled or running; panics after `timeout`.
pub async fn wait_until_all_finished(db: &sqlx::PgPool, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let (open,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM executions WHERE state IN ('scheduled', 'running')")
            .fetch_one(db)
            .await
            .expect("count open executions");
        if open == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{open} executions still open after {timeout:?}: the executors stalled\n{}",
            diagnose(db).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Milliseconds since the Unix epoch, the clock the processes stamp attempts with.
pub fn now_ms() -> i64 {
    deferral::store::now_ms()
}

/// `version name` of the PostgreSQL cluster the restart tests stop and start:
/// `DEFERRAL_TEST_PG_CLUSTER` (e.g. `15 stall`), by default the only version under
/// /etc/postgresql and `main`. It must be the server `DEFERRAL_TEST_POSTGRES` points at.
pub fn pg_cluster() -> (String, String) {
    let spec = std::env::var("DEFERRAL_TEST_PG_CLUSTER").unwrap_or_else(|_| {
        let versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
            .expect("/etc/postgresql: set DEFERRAL_TEST_PG_CLUSTER")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        assert_eq!(
            versions.len(),
            1,
            "several versions {versions:?}: set DEFERRAL_TEST_PG_CLUSTER"
        );
        format!("{} main", versions[0])
    });
    let (version, name) = spec
        .split_once(' ')
        .expect("DEFERRAL_TEST_PG_CLUSTER is `version name`");
    (version.to_string(), name.to_string())
}

/// `pg_ctlcluster <version> <name> <args…>` on the test cluster.
pub fn pg_ctlcluster(args: &[&str]) -> std::process::ExitStatus {
    let (version, name) = pg_cluster();
    Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, &name])
        .args(args)
        .status()
        .expect("run pg_ctlcluster")
}

/// Whether the tests that restart the PostgreSQL server were asked for
/// (`DEFERRAL_TEST_BACKEND=postgres DEFERRAL_TEST_PG_RESTART=1`).
pub fn restarts_allowed() -> bool {
    crate::support::backend() == "postgres" && std::env::var("DEFERRAL_TEST_PG_RESTART").as_deref() == Ok("1")
}
