//! `deferral demo`: fills a fresh database with a believable history, so the console's
//! filters and detail pages have something to show before the first real webhook.
//!
//! The events are the fixtures of the real types (one story per invented customer), stored
//! as the webhook would store them and run by the real handlers from their payloads. Some
//! executions are given a scripted fate instead: retried after real-looking Stripe errors,
//! failed, waiting for a retry, scheduled for later or cancelled.

use std::collections::HashMap;

use anyhow::Context;
use clap::Args;
use domain::model::Action;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::executor::{ErrorKind, Job};
use crate::fixtures::{self, Fixture, stripe_id};
use crate::handlers::Processor;
use crate::store::{Claimed, Completion, Finish, NewEvent, Store, now_ms};

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// The database to fill: `sqlite://PATH` or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://deferral.db")]
    pub database_url: String,
    /// Add to a database that already holds executions.
    #[arg(long)]
    pub force: bool,
    /// How many customers to invent; each brings 4 to 15 events.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub customers: u32,
}

const OWNER: &str = "deferral-demo";
const VERSIONS: [&str; 2] = [crate::stripe::API_VERSION, crate::fixtures::PRE_BASIL];
const MAX_ATTEMPTS: i64 = 8;

/// What happens to an execution instead of (or before) running its handler.
#[derive(Debug, Clone)]
enum Fate {
    /// Fails with these errors, one per attempt, then runs.
    Flaky(Vec<String>),
    /// Fails at once with a permanent error.
    Permanent(String),
    /// Fails on every attempt until none are left.
    Exhausted(String),
    /// Failed once; the next attempt is later.
    Waiting(String),
    /// Scheduled for later and cancelled by an operator.
    Cancelled,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.database_url).await?;
    let existing: i64 = store.count_by_state().await?.iter().map(|(_, n)| n).sum();
    if existing > 0 && !args.force {
        anyhow::bail!(
            "the database {} already holds {existing} executions; `deferral demo` fills fresh databases only \
             (pass --force to add the demo history anyway)",
            args.database_url
        );
    }
    let made = fill(&store, args.customers).await?;
    let mut states = store.count_by_state().await?;
    states.sort();
    let states: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!(
        "demo: {made} executions stored in {} ({})",
        args.database_url,
        states.join(", ")
    );
    println!("open the console and filter by state, event type, livemode or API version");
    store.close().await;
    Ok(())
}

/// Stores the demo events and runs them; returns how many executions were made.
pub async fn fill(store: &Store, customers: u32) -> anyhow::Result<usize> {
    let now = now_ms();
    let mut rng = StdRng::from_entropy();
    let mut events = Vec::new();
    let mut fates = HashMap::new();
    for i in 0..customers {
        story(i, now, &mut rng, &mut events, &mut fates)?;
    }
    let outcomes = store.ingest(&events).await.context("cannot store the demo events")?;
    for (event, outcome) in events.iter().zip(&outcomes) {
        if let Some(Fate::Cancelled) = fates.get(&event.id) {
            store.act(&outcome.execution_id, Action::Cancel).await?;
        }
    }
    let processor = {
        let mut p = Processor::new(store.clone(), None);
        p.register_builtin();
        p
    };
    loop {
        let claimed = store.claim(OWNER, 200, 60_000, &[]).await?;
        if claimed.is_empty() {
            break;
        }
        let mut done = Vec::with_capacity(claimed.len());
        for execution in &claimed {
            let finish = decide(&processor, execution, fates.get(&execution.row.event_id)).await;
            let started_at = execution.row.started_at.unwrap_or(now);
            let duration_us = rng.gen_range(8_000..450_000);
            done.push(Completion {
                execution_id: execution.row.id.clone(),
                attempt: execution.row.attempts,
                started_at,
                finished_at: started_at + duration_us / 1000,
                duration_us,
                finish,
            });
        }
        store.complete(OWNER, &done).await?;
    }
    Ok(outcomes.len())
}

async fn decide(processor: &Processor, execution: &Claimed, fate: Option<&Fate>) -> Finish {
    let attempt = execution.row.attempts;
    let retry = |at: i64, message: &str| Finish::Retry {
        at,
        kind: "retryable",
        message: message.to_string(),
    };
    match fate {
        Some(Fate::Flaky(errors)) if attempt as usize <= errors.len() => retry(now_ms(), &errors[attempt as usize - 1]),
        Some(Fate::Permanent(message)) => Finish::Failed {
            kind: "permanent",
            message: message.clone(),
        },
        Some(Fate::Exhausted(message)) if attempt < MAX_ATTEMPTS => retry(now_ms(), message),
        Some(Fate::Exhausted(message)) => Finish::Failed {
            kind: "retryable",
            message: format!("{message} (attempt {attempt} of {MAX_ATTEMPTS}, no tries left)"),
        },
        Some(Fate::Waiting(message)) => retry(now_ms() + 25 * 60_000, message),
        _ => match processor.run(execution).await {
            Ok(out) => Finish::Succeeded {
                result: out.result,
                source: out.source,
            },
            Err(e) if e.kind == ErrorKind::Permanent => Finish::Failed {
                kind: "permanent",
                message: e.message,
            },
            Err(e) => Finish::Failed {
                kind: "retryable",
                message: e.message,
            },
        },
    }
}

/// Real-looking failures, as the Stripe client words them.
fn stripe_errors(event_id: &str) -> [String; 6] {
    [
        "Stripe answered 500 api_error: An unknown error occurred while processing the request.".into(),
        "Stripe answered 429 rate_limit: Request rate limit exceeded.".into(),
        "Stripe did not answer within 30s".into(),
        format!("cannot reach Stripe: error sending request for url (https://api.stripe.com/v1/events/{event_id}): connection closed before message completed"),
        "Stripe answered 503 api_error: The service is temporarily unavailable.".into(),
        "Stripe answered 409 lock_timeout: This object cannot be accessed right now because another API request or Stripe process is currently accessing it.".into(),
    ]
}

/// One customer's history: signs up, subscribes, pays; some fail to pay, dispute, leave.
fn story(
    i: u32,
    now: i64,
    rng: &mut StdRng,
    events: &mut Vec<NewEvent>,
    fates: &mut HashMap<String, Fate>,
) -> anyhow::Result<()> {
    let livemode = i.is_multiple_of(3);
    let version = VERSIONS[(i % 4 == 3) as usize];
    let customer = stripe_id("cus", 14);
    let subscription = stripe_id("sub", 24);
    let mut at = now / 1000 - rng.gen_range(86_400..14 * 86_400);
    let mut next = |f: Fixture, rng: &mut StdRng| {
        at += rng.gen_range(30..6 * 3_600);
        f.created(at).livemode(livemode).api_version(version)
    };
    let sub = |ty: &str| Fixture::new(ty).map(|f| f.object_id(&subscription).customer(&customer));
    let mut story = vec![
        next(Fixture::new("customer.created")?.customer(&customer), rng),
        next(sub("customer.subscription.created")?, rng),
        next(
            Fixture::new("invoice.finalized")?
                .customer(&customer)
                .set("subscription", subscription.as_str()),
            rng,
        ),
        next(
            Fixture::new("invoice.paid")?
                .customer(&customer)
                .set("subscription", subscription.as_str()),
            rng,
        ),
    ];
    if i % 3 == 1 {
        story.push(next(Fixture::new("customer.updated")?.customer(&customer), rng));
    }
    if i % 5 == 2 || i.is_multiple_of(7) {
        let (decline, code) = [
            ("insufficient_funds", "card_declined"),
            ("expired_card", "expired_card"),
            ("do_not_honor", "card_declined"),
            ("generic_decline", "card_declined"),
            ("transaction_not_allowed", "card_declined"),
            ("authentication_required", "authentication_required"),
        ][(i as usize / 2) % 6];
        let charge = stripe_id("ch", 24);
        let intent = stripe_id("pi", 24);
        let invoice = stripe_id("in", 24);
        let link = |f: Fixture| f.customer(&customer).set("invoice", invoice.as_str());
        story.push(next(
            link(Fixture::new("payment_intent.payment_failed")?.object_id(&intent))
                .set("last_payment_error.charge", charge.as_str())
                .set("last_payment_error.decline_code", decline)
                .set("last_payment_error.code", code),
            rng,
        ));
        story.push(next(
            link(Fixture::new("charge.failed")?.object_id(&charge))
                .set("payment_intent", intent.as_str())
                .set("outcome.reason", decline)
                .set("failure_code", code),
            rng,
        ));
        story.push(next(
            Fixture::new("invoice.payment_failed")?
                .object_id(&invoice)
                .customer(&customer)
                .set("charge", charge.as_str())
                .set("payment_intent", intent.as_str()),
            rng,
        ));
        story.push(next(sub("customer.subscription.updated")?, rng));
        if i.is_multiple_of(4) {
            let dispute = |ty: &str| {
                Fixture::new(ty).map(|f| f.set("charge", charge.as_str()).set("payment_intent", intent.as_str()))
            };
            let id = stripe_id("dp", 24);
            story.push(next(dispute("charge.dispute.created")?.object_id(&id), rng));
            story.push(next(dispute("charge.dispute.funds_withdrawn")?.object_id(&id), rng));
            if i.is_multiple_of(8) {
                let outcome = if i.is_multiple_of(16) { "won" } else { "lost" };
                story.push(next(
                    dispute("charge.dispute.closed")?.object_id(&id).set("status", outcome),
                    rng,
                ));
            }
        }
    }
    if i % 7 == 3 {
        story.push(next(sub("customer.subscription.trial_will_end")?, rng));
    }
    if i % 4 == 1 {
        // Types without a handler: they succeed as "skipped".
        let ty = ["product.created", "product.updated"][(i as usize / 4) % 2];
        story.push(next(fixtures::unhandled(ty), rng));
    }
    if i % 10 == 9 {
        story.push(next(sub("customer.subscription.deleted")?, rng));
        story.push(next(Fixture::new("customer.deleted")?.customer(&customer), rng));
    }
    let upcoming = next(Fixture::new("invoice.upcoming")?.customer(&customer), rng);

    for f in &story {
        events.push(new_event(f, now));
    }
    // Scripted fates, on events late in their object's story, so no later event waits on them.
    let errors = stripe_errors(story[0].event_id());
    let pick = |rng: &mut StdRng| errors.choose(rng).cloned().unwrap_or_default();
    match i % 9 {
        0 | 4 => {
            let n = 1 + (i as usize % 3);
            let flaky = (0..n).map(|_| pick(rng)).collect();
            fates.insert(story[story.len() - 1].event_id().to_string(), Fate::Flaky(flaky));
        }
        2 => {
            let id = story[story.len() - 1].event_id();
            let message = if i.is_multiple_of(2) {
                format!("Stripe answered 404 resource_missing: No such event: '{id}'")
            } else {
                "Stripe answered 401 invalid_request_error: Expired API Key provided: sk_live_****************0Xb4"
                    .into()
            };
            fates.insert(id.to_string(), Fate::Permanent(message));
        }
        6 => {
            fates.insert(
                story[story.len() - 1].event_id().to_string(),
                Fate::Exhausted(pick(rng)),
            );
        }
        _ => {}
    }
    // The next invoice: due later, some already waiting on a retry, a few cancelled.
    let mut upcoming_event = new_event(&upcoming, now);
    match i % 6 {
        0 => upcoming_event.run_at = now + rng.gen_range(1..48) * 3_600_000,
        1 => {
            fates.insert(upcoming_event.id.clone(), Fate::Waiting(pick(rng)));
        }
        5 if i % 12 == 5 => {
            upcoming_event.run_at = now + 3 * 86_400_000;
            fates.insert(upcoming_event.id.clone(), Fate::Cancelled);
        }
        _ => {}
    }
    events.push(upcoming_event);
    Ok(())
}

fn new_event(f: &Fixture, now: i64) -> NewEvent {
    let e = f.value();
    NewEvent {
        id: f.event_id().to_string(),
        event_type: f.event_type().to_string(),
        created: e["created"].as_i64().unwrap_or_default(),
        livemode: e["livemode"].as_bool().unwrap_or_default(),
        api_version: e["api_version"].as_str().map(String::from),
        account: None,
        object_id: f.object()["id"].as_str().map(String::from),
        object_type: f.object()["object"].as_str().map(String::from),
        payload: f.to_json(),
        run_at: now,
        discard_at: None,
        max_attempts: MAX_ATTEMPTS,
        origin: domain::model::Origin::Webhook,
    }
}
