//! `deferral demo`: fills a fresh database with a believable history, so the console's
//! filters and detail pages have something to show before the first real webhook.
//!
//! The events are the fixtures of the real types (one story per invented customer). They enter
//! as a delivered webhook does once its signature checks out (`webhook::admit`, then the
//! group-commit `Ingest`), with the server's settings (`DEFERRAL_EVENT_TYPES`,
//! `DEFERRAL_MAX_ATTEMPTS`, …), and the real executor runs them with the real handlers, reading
//! the payloads. Some executions are given a scripted fate instead of their handler: the errors
//! Stripe gives, for the executor to decide on as it always does (retry, or fail once the tries
//! are spent or the error is permanent). A few are scheduled for later, and a few of those
//! cancelled, through the operator actions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use domain::model::{Action, Origin};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use crate::actions::{Actions, By};
use crate::config::Config;
use crate::executor::{Executor, ExecutorHandle, Job, JobError, JobOutput, Settings};
use crate::fixtures::{self, Fixture, stripe_id};
use crate::handlers::Processor;
use crate::store::{Claimed, NewEvent, Store, now_ms};
use crate::webhook::{Admitted, Ingest, admit};

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Add to a database that already holds executions.
    #[arg(long)]
    pub force: bool,
    /// How many customers to invent; each brings 4 to 15 events.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub customers: u32,
    /// The server's settings: the database to fill (`DATABASE_URL`), and what the webhook and
    /// the executor would do with the events.
    #[command(flatten)]
    pub config: Config,
}

const VERSIONS: [&str; 2] = [crate::stripe::API_VERSION, crate::fixtures::PRE_BASIL];
/// How long a failed execution waits for its next try when the demo ends.
const WAITING: Duration = Duration::from_secs(25 * 60);

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

/// An event of a story, and when it is due if not at once.
struct Planned {
    fixture: Fixture,
    later: Option<i64>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let config = Arc::new(args.config);
    let url = config.database_url.clone();
    let store = Store::open_with(&url, config.db_timeout).await?;
    let existing: i64 = store.count_by_state().await?.iter().map(|(_, n)| n).sum();
    if existing > 0 && !args.force {
        anyhow::bail!(
            "the database {url} already holds {existing} executions; `deferral demo` fills fresh databases only \
             (pass --force to add the demo history anyway)"
        );
    }
    let filled = fill(&store, &config, args.customers).await?;
    let mut states = store.count_by_state().await?;
    states.sort();
    let states: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!(
        "demo: {} executions stored in {url} ({})",
        filled.stored,
        states.join(", ")
    );
    if filled.ignored > 0 {
        println!(
            "demo: {} events ignored: their types are not in DEFERRAL_EVENT_TYPES",
            filled.ignored
        );
    }
    println!("open the console and filter by state, event type, livemode or API version");
    store.close().await;
    Ok(())
}

/// What [`fill`] did.
pub struct Filled {
    /// New executions.
    pub stored: usize,
    /// Events the allow-list (`DEFERRAL_EVENT_TYPES`) left out.
    pub ignored: usize,
}

/// Stores the demo events as the webhook does and runs them with the executor until nothing
/// more is due.
pub async fn fill(store: &Store, config: &Arc<Config>, customers: u32) -> anyhow::Result<Filled> {
    let now = now_ms();
    let mut rng = StdRng::from_entropy();
    let mut planned = Vec::new();
    let mut fates = HashMap::new();
    for i in 0..customers {
        story(i, now, &mut rng, &mut planned, &mut fates)?;
    }
    let mut events = Vec::with_capacity(planned.len());
    let mut ignored = 0;
    for p in &planned {
        match admit(p.fixture.to_json().as_bytes(), now, config, Origin::Webhook).map_err(anyhow::Error::msg)? {
            Admitted::New(new) => events.push(due_later(new, p.later)),
            Admitted::Ignored { .. } => ignored += 1,
        }
    }

    // The webhook's writer; nothing runs yet, so there is no executor to wake.
    let ingest = Ingest::start(store.clone(), config.clone(), ExecutorHandle::default());
    let submitted = events.iter().map(|e| ingest.submit(e.clone()));
    let outcomes = futures::future::join_all(submitted).await;
    let mut stored = 0;
    let actions = Actions::new(store.clone(), ExecutorHandle::default());
    for (event, outcome) in events.iter().zip(outcomes) {
        let outcome = outcome
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("cannot store the demo events")?;
        stored += usize::from(!outcome.duplicate);
        if let Some(Fate::Cancelled) = fates.get(&event.id) {
            actions
                .act(&By::tool("demo"), &outcome.execution_id, Action::Cancel)
                .await
                .context("cannot cancel a demo execution")?;
        }
    }

    let mut processor = Processor::new(store.clone(), None);
    processor.register_builtin();
    let job = Arc::new(Scripted { processor, fates });
    let stop = CancellationToken::new();
    let executor = Executor::start_with(store.clone(), settings(config), job, stop.clone());
    let settled = settle(store).await;
    stop.cancel();
    executor.stopped().await;
    settled?;
    Ok(Filled { stored, ignored })
}

/// The server's executor settings, with the history replayed in seconds: no back-off between
/// tries (the executor still decides whether to try again, and counts the tries), idle workers
/// looking often, and enough of them.
fn settings(config: &Config) -> Settings {
    let mut s = Settings::from_config(config);
    s.retry.initial_interval = Duration::ZERO;
    s.retry.max_interval = Duration::ZERO;
    s.poll_interval = Duration::from_millis(20);
    s.workers = s.workers.max(32);
    s
}

/// Scheduled for later: due then instead of at once (and discarded as much later, if ever).
fn due_later(mut event: NewEvent, later: Option<i64>) -> NewEvent {
    if let Some(at) = later {
        event.discard_at = event.discard_at.map(|d| d + (at - event.run_at));
        event.run_at = at;
    }
    event
}

/// Waits until nothing runs and nothing could start: what is left waits for a later time (a
/// retry, a scheduled run). Seen three times in a row, so an execution claimed between the two
/// questions is not missed.
async fn settle(store: &Store) -> anyhow::Result<()> {
    let mut quiet = 0;
    while quiet < 3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let running: i64 = store
            .count_by_state()
            .await?
            .iter()
            .filter(|(state, _)| state == "running")
            .map(|(_, n)| n)
            .sum();
        let idle = running == 0 && !store.claimable_exists(&[]).await?;
        quiet = if idle { quiet + 1 } else { 0 };
    }
    Ok(())
}

/// The real handlers, with the scripted fates played instead for some executions.
struct Scripted {
    processor: Processor,
    fates: HashMap<String, Fate>,
}

#[async_trait::async_trait]
impl Job for Scripted {
    async fn run(&self, execution: &Claimed) -> Result<JobOutput, JobError> {
        // Stripe's latency, so that the attempts take as long as real ones.
        let latency = rand::thread_rng().gen_range(8..250);
        tokio::time::sleep(Duration::from_millis(latency)).await;
        let attempt = execution.row.attempts as usize;
        match self.fates.get(&execution.row.event_id) {
            Some(Fate::Flaky(errors)) if attempt <= errors.len() => Err(JobError::retryable(&errors[attempt - 1])),
            Some(Fate::Permanent(message)) => Err(JobError::permanent(message)),
            Some(Fate::Exhausted(message)) => Err(JobError::retryable(message)),
            Some(Fate::Waiting(message)) => Err(JobError::retryable(message).retry_after(WAITING)),
            _ => self.processor.run(execution).await,
        }
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
    events: &mut Vec<Planned>,
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
    let later = match i % 6 {
        0 => Some(now + rng.gen_range(1..48) * 3_600_000),
        1 => {
            fates.insert(upcoming.event_id().to_string(), Fate::Waiting(pick(rng)));
            None
        }
        5 if i % 12 == 5 => {
            fates.insert(upcoming.event_id().to_string(), Fate::Cancelled);
            Some(now + 3 * 86_400_000)
        }
        _ => None,
    };
    events.extend(story.into_iter().map(|fixture| Planned { fixture, later: None }));
    events.push(Planned {
        fixture: upcoming,
        later,
    });
    Ok(())
}
