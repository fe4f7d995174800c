//! Stripe rate-limit benchmark: N events, each re-fetched from a local Stripe stand-in that
//! enforces Stripe's default limits (100 requests/s live, 25/s per endpoint) and answers 429
//! over them as Stripe does, through the real webhook endpoint, store and executor.
//!
//!   make bench-stripe-limits                                   (SQLite, 1,000 events, default budget)
//!   make bench-stripe-limits BENCH_EVENTS=3000 STRIPE_API_RATE=live=100,endpoint=25
//!   make bench-stripe-limits DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench
//!   make bench-stripe-limits BENCH_STRIPE_EVENTS=basil STRIPE_API_RATE=live=50,endpoint=25
//!
//! `BENCH_STRIPE_EVENTS=customer` (the default): `customer.created` events, one call each
//! (`GET /v1/events/{id}`). `basil`: basil `invoice.payment_failed` events with their payment
//! intent and charge, three calls each on three endpoints (the event, the invoice's payments,
//! the payment intent's charges), so that with a per-endpoint budget above a third of the mode's
//! the mode's limit is the one that binds.
//!
//! Reports the drain time (first delivery to last execution finished) against N ÷ the event
//! rate Deferral allows itself (the endpoint's budget, or the mode's ÷ the calls per event when
//! that is less), the executions that needed a second attempt, and the share of calls answered
//! 429. Targets: within 20 %, 0, at most 1 %.

#[path = "../tests/support/fake_stripe.rs"]
mod fake_stripe;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use deferral::config::{CommaList, Config};
use deferral::fixtures::Fixture;
use deferral::stripe::{API_VERSION, Rates};
use deferral::webhook::signature;
use domain::model::{ExecutionFilter, State};
use fake_stripe::{FakeStripe, LIVE_KEY, Limits};

const SECRET: &str = "whsec_bench_0123456789";
/// Stripe's default limits, as the stand-in enforces them.
const STRIPE: Limits = Limits {
    live: 100,
    test: 25,
    endpoint: 25,
};

fn event(i: usize, created: i64) -> String {
    serde_json::json!({
        "id": format!("evt_bench{i:06}"),
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "livemode": true,
        "type": "customer.created",
        "data": { "object": { "id": format!("cus_bench{i:06}"), "object": "customer", "email": null } },
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null }
    })
    .to_string()
}

/// A basil invoice's failed payment, with the payment intent and charge Stripe holds for it put
/// in the stand-in: three calls to process.
fn basil_invoice(fake: &FakeStripe) -> String {
    let f = Fixture::new("invoice.payment_failed")
        .expect("a known type")
        .api_version(API_VERSION)
        .livemode(true);
    for neighbour in ["charge.failed", "payment_intent.payment_failed"] {
        fake.put(f.related(neighbour).expect("a known type").canonical());
    }
    fake.put_fixture(&f);
    f.to_json()
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rates: Rates = std::env::var("STRIPE_API_RATE")
        .map(|v| v.parse().expect("STRIPE_API_RATE"))
        .unwrap_or_default();
    let (database_url, _dir) = support::database_url();
    support::reset(&database_url).await;

    let fake = FakeStripe::start().await;
    fake.limit(STRIPE);
    let mut config = Config::defaults();
    config.database_url = database_url.clone();
    config.site_addr = "127.0.0.1:0".parse().unwrap();
    config.stripe_webhook_secret = CommaList(vec![SECRET.into()]);
    config.console_password = Some("bench".into());
    config.stripe_secret_key = Some(LIVE_KEY.into());
    config.stripe_api_base = fake.url.clone();
    config.stripe_api_rate = rates;
    let running = deferral::Application::build(config)
        .await
        .expect("start deferral")
        .spawn();
    let url = format!("http://{}/webhooks/stripe", running.addr);

    let kind = std::env::var("BENCH_STRIPE_EVENTS").unwrap_or_else(|_| "customer".into());
    let (bodies, calls_per_event): (Vec<String>, usize) = match kind.as_str() {
        "customer" => {
            let created = chrono::Utc::now().timestamp() - 60;
            let bodies: Vec<String> = (0..n).map(|i| event(i, created)).collect();
            for body in &bodies {
                fake.put(&serde_json::from_str(body).expect("an event body"));
            }
            (bodies, 1)
        }
        "basil" => ((0..n).map(|_| basil_invoice(&fake)).collect(), 3),
        other => panic!("BENCH_STRIPE_EVENTS={other}: expected customer or basil"),
    };
    let client = reqwest::Client::new();
    let started = Instant::now();
    let started_ms = deferral::store::now_ms();
    // Delivered as fast as 16 senders go: the whole burst is in before the first seconds pass.
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let senders: Vec<_> = (0..16)
        .map(|_| {
            let (queue, client, url) = (queue.clone(), client.clone(), url.clone());
            tokio::spawn(async move {
                loop {
                    let Some(body) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let header = signature::header_for(SECRET, chrono::Utc::now().timestamp(), body.as_bytes());
                    let resp = client
                        .post(&url)
                        .header("Stripe-Signature", header)
                        .body(body)
                        .send()
                        .await
                        .expect("deliver");
                    assert_eq!(resp.status(), 200);
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    let delivered = started.elapsed();

    let all = ExecutionFilter::default();
    loop {
        let counts = running.store.count_states(&all, n as i64 + 1).await.unwrap();
        let finished: i64 = counts.iter().filter(|(s, _)| s.is_final()).map(|(_, c)| c).sum();
        if finished >= n as i64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3600),
            "not drained after an hour"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts = running.store.count_states(&all, n as i64 + 1).await.unwrap();
    let succeeded = counts
        .iter()
        .find(|(s, _)| *s == State::Succeeded)
        .map_or(0, |(_, c)| *c);
    let (rows, _) = running
        .store
        .list(&ExecutionFilter {
            limit: Some(n as u32),
            ..ExecutionFilter::default()
        })
        .await
        .unwrap();
    let retried = rows.iter().filter(|r| r.attempts > 1).count();
    // A call that went wrong would leave a basil try unlinked rather than fail it.
    let unlinked = rows
        .iter()
        .filter(|r| r.result.as_deref().is_some_and(|t| t.contains("not linked")))
        .count();
    let last_finished = rows.iter().filter_map(|r| r.finished_at).max().unwrap_or(started_ms);
    let drained = Duration::from_millis((last_finished - started_ms).max(0) as u64);

    // Events per second: each call of an event is on its own endpoint, all on the live mode's.
    let allowed = rates.endpoint.min(rates.live / calls_per_event as f64);
    let ideal = Duration::from_secs_f64(n as f64 / allowed);
    let calls = fake.served() + fake.rate_limited();
    let share_429 = 100.0 * fake.rate_limited() as f64 / calls.max(1) as f64;
    let off = 100.0 * (drained.as_secs_f64() / ideal.as_secs_f64() - 1.0);
    println!(
        "stripe limits [{}]: {n} {kind} events, {calls_per_event} call(s) each, budget live={} endpoint={} \
         (stand-in: 100/s live, 25/s per endpoint)",
        running.store.backend(),
        rates.live,
        rates.endpoint
    );
    println!("  delivered in {:.2} s", delivered.as_secs_f64());
    println!(
        "  drained in {:.2} s; N / allowed rate ({allowed:.2} events/s) = {:.2} s ({off:+.1} %, target within 20 %)",
        drained.as_secs_f64(),
        ideal.as_secs_f64()
    );
    println!("  succeeded {succeeded} of {n}; executions retried: {retried} (target 0); not linked: {unlinked}");
    println!(
        "  Stripe calls {calls}, answered 429: {} ({share_429:.2} %, target at most 1 %)",
        fake.rate_limited()
    );
    running.stop().await.unwrap();
}
