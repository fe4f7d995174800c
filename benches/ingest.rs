//! Ingest benchmark: signed Stripe events over loopback to the release binary.
//!
//!   make bench-ingest                      (SQLite in a temporary folder)
//!   make bench-ingest DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench
//!
//! Reports a bare `GET /healthz` run for comparison, the most verified-and-committed
//! events per second with N connections, and latency at a fixed 1,000 events/s.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deferral::webhook::signature::header_for;
use support::{ms, percentile};

const SECRET: &str = "whsec_bench";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn body(n: u64) -> String {
    let now = chrono::Utc::now().timestamp();
    format!(
        r#"{{"id":"evt_bench_{n}","object":"event","api_version":"2024-06-20","created":{now},"livemode":false,"type":"invoice.paid","data":{{"object":{{"id":"in_{n}","object":"invoice","amount_paid":2900,"currency":"usd","customer":"cus_{c}"}}}},"pending_webhooks":1,"request":{{"id":null,"idempotency_key":null}}}}"#,
        c = n % 1000
    )
}

struct Run {
    requests: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: u64,
}

impl Run {
    fn report(&self, label: &str, connections: u64) {
        let p50 = percentile(&self.latencies, 0.50);
        let p99 = percentile(&self.latencies, 0.99);
        println!(
            "| {label} | {connections} | {:.0}/s | {} | {} | {} |",
            self.requests as f64 / self.elapsed.as_secs_f64(),
            ms(p50),
            ms(p99),
            self.errors
        );
    }
}

/// `connections` workers, each sending requests back to back (or paced to `rate` in total).
async fn load(
    url: String,
    webhook: bool,
    connections: u64,
    duration: Duration,
    rate: Option<u64>,
    next: Arc<AtomicU64>,
) -> Run {
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|w| {
            let url = url.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .tcp_nodelay(true)
                    .build()
                    .unwrap();
                let mut lat = Vec::new();
                let mut errors = 0;
                let interval = rate.map(|r| Duration::from_secs_f64(connections as f64 / r as f64));
                let mut due =
                    Instant::now() + interval.map_or(Duration::ZERO, |i| i.mul_f64(w as f64 / connections as f64));
                while started.elapsed() < duration {
                    if let Some(i) = interval {
                        tokio::time::sleep_until(due.into()).await;
                        due += i;
                    }
                    let t = Instant::now();
                    let resp = if webhook {
                        let b = body(next.fetch_add(1, Ordering::Relaxed));
                        let header = header_for(SECRET, chrono::Utc::now().timestamp(), b.as_bytes());
                        client
                            .post(&url)
                            .header("Stripe-Signature", header)
                            .body(b)
                            .send()
                            .await
                    } else {
                        client.get(&url).send().await
                    };
                    match resp {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            lat.push(t.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    latencies.sort();
    Run {
        requests: latencies.len() as u64,
        elapsed: started.elapsed(),
        latencies,
        errors,
    }
}

#[tokio::main]
async fn main() {
    let (database_url, _dir) = support::database_url();
    support::reset(&database_url).await;
    let connections = env_num("CONNECTIONS", 64);
    let seconds = Duration::from_secs(env_num("SECONDS", 10));

    let mut server = Command::new(env!("CARGO_BIN_EXE_deferral"))
        .env("DATABASE_URL", &database_url)
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        // Measure the ingest alone: the executions stay scheduled for an hour.
        .env("DEFERRAL_PROCESS_DELAY", "1h")
        .env("RUST_LOG", "warn,deferral=info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the release binary");
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(i) = line.find("listening on http://") {
            break line[i + "listening on http://".len()..].trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let backend = if database_url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "Ingest benchmark, release build, {backend}, {} cores, {}s per run\n",
        std::thread::available_parallelism().unwrap(),
        seconds.as_secs()
    );
    println!("| run | connections | throughput | p50 | p99 | errors |");
    println!("|---|---|---|---|---|---|");

    let next = Arc::new(AtomicU64::new(0));
    let health = format!("http://{addr}/healthz");
    let hook = format!("http://{addr}/webhooks/stripe");
    load(
        hook.clone(),
        true,
        connections,
        Duration::from_secs(2),
        None,
        next.clone(),
    )
    .await; // warm-up
    load(health.clone(), false, connections, seconds, None, next.clone())
        .await
        .report("GET /healthz", connections);
    load(hook.clone(), true, connections, seconds, None, next.clone())
        .await
        .report("POST /webhooks/stripe, max", connections);
    load(hook.clone(), true, 16, seconds, Some(1000), next.clone())
        .await
        .report("POST /webhooks/stripe at 1,000/s", 16);

    let _ = server.kill();
    let _ = server.wait();
}
