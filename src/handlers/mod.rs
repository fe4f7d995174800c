//! Stripe event processing: handlers registered by event type, run by the executor.
//!
//! Each execution reads its event from the Stripe API when `STRIPE_SECRET_KEY` is set
//! (`source: api`) and from the verified webhook payload otherwise (`source: payload`),
//! then runs every handler registered for the type. Types without one succeed with
//! "skipped: no handler for <type>". The built-in handlers register themselves through
//! [`Processor::register`], the same call an application uses for its own.
//!
//! Events keep the API version they were created in (re-fetched or not), while objects
//! fetched directly come back in `STRIPE_API_VERSION`: handlers read both generations, and
//! a result that used fetched objects ends by saying which version each was in.

mod customers;
mod declines;
mod disputes;
mod notifications;
mod payments;
mod subscriptions;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::executor::{Job, JobError, JobOutput};
use crate::store::records::{Stamp, Upsert};
use crate::store::{Claimed, Store, StoreError};
use crate::stripe::{self, Event};

pub use declines::decline_reason;

/// Handles one Stripe event type. Must be idempotent: an execution may run more than once.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Applies the event; the returned text says what happened and is shown on the execution.
    async fn handle(&self, cx: &Context<'_>) -> Result<String, JobError>;
}

/// What a handler works with: the event, the store, and the Stripe API when a key is set.
pub struct Context<'a> {
    pub event: &'a Event,
    pub store: &'a Store,
    stripe: Option<&'a stripe::Client>,
    /// The Connect account every request is made as: the event's, else the one stored with it.
    account: Option<&'a str>,
    /// Whether an object was fetched, so the result says in which version.
    fetched: AtomicBool,
}

impl Context<'_> {
    /// `data.object` as `T`; a malformed object is a permanent error (retrying cannot fix it).
    pub fn object<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        self.event.object().map_err(JobError::permanent)
    }

    /// The event's id, `created` and livemode, for versioned upserts.
    pub fn stamp(&self) -> Stamp<'_> {
        Stamp {
            event_id: &self.event.id,
            created: self.event.created,
            livemode: self.event.livemode,
        }
    }

    /// Retrieves `/v1/{collection}/{id}` (as the event's account, in `STRIPE_API_VERSION`).
    /// `None` without a key, and when Stripe no longer has the object: then the event's
    /// snapshot is all there is.
    pub async fn fetch<T: DeserializeOwned>(&self, collection: &str, id: &str) -> Result<Option<T>, JobError> {
        let Some(client) = self.stripe else { return Ok(None) };
        let value = match client.retrieve(collection, id, self.account).await {
            Ok(value) => value,
            Err(e) if e.is_missing() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        self.fetched.store(true, Ordering::Relaxed);
        T::deserialize(&value)
            .map(Some)
            .map_err(|e| JobError::retryable(format!("Stripe's {collection}/{id} is not as expected: {e}")))
    }

    /// Lists `/v1/{collection}?{filters}` (as the event's account, in `STRIPE_API_VERSION`);
    /// `None` without a key.
    pub async fn list<T: DeserializeOwned>(
        &self,
        collection: &str,
        filters: &[(&str, &str)],
    ) -> Result<Option<Vec<T>>, JobError> {
        let Some(client) = self.stripe else { return Ok(None) };
        let values = client.list(collection, filters, self.account).await?;
        self.fetched.store(true, Ordering::Relaxed);
        values
            .iter()
            .map(T::deserialize)
            .collect::<Result<Vec<T>, _>>()
            .map(Some)
            .map_err(|e| JobError::retryable(format!("Stripe's {collection} list is not as expected: {e}")))
    }

    /// The event's API version, as it says.
    pub fn version(&self) -> &str {
        self.event.api_version.as_deref().unwrap_or("unknown")
    }

    /// Whether the event's payload has the basil generation's shape (2025-03-31 and later):
    /// invoices, payment intents and charges then no longer name each other.
    pub fn is_basil(&self) -> bool {
        stripe::version::is_basil_or_later(self.version())
    }

    /// Whether objects can be fetched from the Stripe API (a key is set).
    pub fn has_api(&self) -> bool {
        self.stripe.is_some()
    }

    /// The result for a versioned upsert.
    pub fn upserted(&self, what: &str, id: &str, done: &str, upsert: Upsert) -> String {
        match upsert {
            Upsert::Applied => format!("{what} {id} {done}"),
            Upsert::Stale { newer_event } => {
                format!(
                    "stale, skipped: {what} {id} already reflects {newer_event}, newer than {}",
                    self.event.id
                )
            }
        }
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> JobError {
        // The database being away or busy passes; a refused statement is a bug a deploy fixes.
        JobError::retryable(e.to_string())
    }
}

/// The executor's job: reads the event and runs the handlers registered for its type.
pub struct Processor {
    store: Store,
    stripe: Option<stripe::Client>,
    handlers: HashMap<String, Vec<Arc<dyn Handler>>>,
}

impl Processor {
    /// Without handlers; reading events from the API when `stripe` is given.
    pub fn new(store: Store, stripe: Option<stripe::Client>) -> Self {
        Processor {
            store,
            stripe,
            handlers: HashMap::new(),
        }
    }

    /// The built-in handlers, reading from the API when `STRIPE_SECRET_KEY` is set.
    pub fn from_config(config: &Config, store: Store) -> Self {
        let stripe = match config.stripe_secret_key.as_deref().filter(|k| !k.trim().is_empty()) {
            Some(key) => {
                // Below the attempt timeout, so a hung request ends as a Stripe timeout.
                let total = config.max_duration.mul_f64(0.8).min(Duration::from_secs(30));
                let timeouts = stripe::Timeouts {
                    connect: total.min(Duration::from_secs(5)),
                    total,
                };
                Some(stripe_client(config, &store, key, timeouts))
            }
            None => {
                tracing::warn!(
                    "STRIPE_SECRET_KEY is not set: events are processed from their verified webhook payloads \
                     (source: payload) instead of being re-fetched from the Stripe API"
                );
                None
            }
        };
        let mut processor = Processor::new(store, stripe);
        processor.register_builtin();
        processor
    }

    /// The Stripe client (and with it the process's Stripe budget), for other users of the API
    /// in this process (the reconciliation sweep), so that all of them spend one budget.
    pub fn stripe(&self) -> Option<&stripe::Client> {
        self.stripe.as_ref()
    }

    /// Adds a handler for `event_type`; several handlers of one type run in registration order.
    pub fn register(&mut self, event_type: &str, handler: Arc<dyn Handler>) -> &mut Self {
        self.handlers.entry(event_type.to_string()).or_default().push(handler);
        self
    }

    /// Adds one handler for several event types.
    pub fn register_all(&mut self, event_types: &[&str], handler: Arc<dyn Handler>) -> &mut Self {
        for ty in event_types {
            self.register(ty, handler.clone());
        }
        self
    }

    /// Customers, subscriptions, payment failures, notifications and disputes.
    pub fn register_builtin(&mut self) -> &mut Self {
        self.register_all(customers::TYPES, Arc::new(customers::Customers))
            .register_all(subscriptions::TYPES, Arc::new(subscriptions::Subscriptions))
            .register_all(payments::TYPES, Arc::new(payments::PaymentFailures))
            .register_all(notifications::TYPES, Arc::new(notifications::Notifications))
            .register_all(disputes::TYPES, Arc::new(disputes::Disputes))
    }

    /// The event types some handler is registered for, sorted.
    pub fn event_types(&self) -> Vec<&str> {
        let mut types: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        types.sort_unstable();
        types
    }

    /// The event to apply: as the API has it, or the verified payload without a key.
    async fn read_event(&self, execution: &Claimed) -> Result<(Event, &'static str), JobError> {
        let stored = Event::parse(&execution.payload).map_err(JobError::permanent)?;
        let Some(client) = &self.stripe else {
            return Ok((stored, "payload"));
        };
        let account = stored.account.as_deref().or(execution.account.as_deref());
        let fetched = client.event(&stored.id, account).await?;
        if fetched.id != stored.id || fetched.event_type != stored.event_type {
            return Err(JobError::permanent(format!(
                "Stripe answered with {} ({}) when asked for {} ({})",
                fetched.id, fetched.event_type, stored.id, stored.event_type
            )));
        }
        Ok((fetched, "api"))
    }
}

/// The process's Stripe client, spending `STRIPE_API_RATE` split between the processes on the
/// database: the server's executor (and its sweep) and `deferral reconcile` each make theirs here.
pub(crate) fn stripe_client(config: &Config, store: &Store, key: &str, timeouts: stripe::Timeouts) -> stripe::Client {
    let budget = stripe::Budget::new(config.stripe_api_rate);
    share_between_processes(&budget, store);
    stripe::Client::new(&config.stripe_api_base, key, &config.stripe_api_version, timeouts).with_budget(budget)
}

/// How often the budget's split between processes is brought up to date.
const PROCESS_COUNT_INTERVAL: Duration = Duration::from_secs(1);

/// PostgreSQL: several processes spend one account's limits, so each takes its share by the
/// number of live processes (counted from PostgreSQL's own sessions: a process that dies drops
/// out when its connections close). Chosen over counting every call in the database: no round
/// trip and no hot row per Stripe call, and governor keeps doing the limiting. The cost: an
/// idle process's share goes unused. Ends with the budget (when the processor is dropped).
fn share_between_processes(budget: &std::sync::Arc<stripe::Budget>, store: &Store) {
    if !store.shared() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let budget = std::sync::Arc::downgrade(budget);
    let store = store.clone();
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(PROCESS_COUNT_INTERVAL);
        loop {
            tick.tick().await;
            let Some(budget) = budget.upgrade() else { return };
            match store.bounded("process count", store.live_processes()).await {
                Ok(n) => budget.set_processes(n),
                Err(e) => tracing::warn!(error = %e, "cannot count the processes sharing the Stripe budget"),
            }
        }
    });
}

#[async_trait::async_trait]
impl Job for Processor {
    async fn run(&self, execution: &Claimed) -> Result<JobOutput, JobError> {
        stripe::attempt(self.apply(execution)).await
    }
}

impl Processor {
    async fn apply(&self, execution: &Claimed) -> Result<JobOutput, JobError> {
        let ty = &execution.row.event_type;
        let Some(handlers) = self.handlers.get(ty) else {
            // Nothing to apply, so nothing worth a call to Stripe.
            return Ok(JobOutput {
                result: format!("skipped: no handler for {ty}"),
                source: Some("payload".into()),
            });
        };
        let (event, source) = self.read_event(execution).await?;
        let cx = Context {
            event: &event,
            store: &self.store,
            stripe: self.stripe.as_ref(),
            account: event.account.as_deref().or(execution.account.as_deref()),
            fetched: AtomicBool::new(false),
        };
        let mut results = Vec::with_capacity(handlers.len());
        for handler in handlers {
            results.push(handler.handle(&cx).await?);
        }
        let mut result = results.join("; ");
        if let (true, Some(client)) = (cx.fetched.load(Ordering::Relaxed), &self.stripe) {
            // The two generations can meet in one execution: say which each part was read in.
            result = format!(
                "{result} [event in API version {}; objects fetched in {}]",
                cx.version(),
                client.version()
            );
        }
        Ok(JobOutput {
            result,
            source: Some(source.into()),
        })
    }
}
