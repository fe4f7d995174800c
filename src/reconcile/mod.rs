//! Reconciliation: the events Stripe could not deliver, read back from its events list
//! (`GET /v1/events`, 30 days deep) and stored through the webhook's own ingest, so each one
//! gets its execution exactly as if it had been delivered, and one already stored keeps its own.
//!
//! `deferral reconcile` runs it on demand (`tools::reconcile`); the server runs it every
//! `DEFERRAL_RECONCILE_INTERVAL` (`sweep`).
//!
//! Connect: a request runs on the account of its key unless it names another with the
//! `Stripe-Account` header (Stripe's "Making API calls for connected accounts"), so the platform's
//! `GET /v1/events` lists the platform's own events only. Each connected account Deferral knows
//! (from the executions it stored) is listed as that account too, and its events keep `account`.

pub mod sweep;

use std::time::Duration;

use domain::model::Origin;

use crate::config::Config;
use crate::store::{NewEvent, Store, StoreError, SweepCounts, now_ms};
use crate::stripe::{self, EventListQuery, PAGE_LIMIT, StripeError, TypeFilter};
use crate::webhook::{Admitted, Ingest, admit};

pub use crate::store::sweeps::STRIPE_LISTS_EVENTS_FOR;

/// A 429 (or a budget with no room) is waited out (its `Retry-After`, at most this long) this
/// many times per page before the run stops.
const RATE_LIMIT_WAITS: u32 = 3;
const LONGEST_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);
/// The longest a live run goes between two recorded pages: its rate-limit waits, with room for
/// the requests and writes around them.
const LONGEST_PAGE: Duration = Duration::from_secs(RATE_LIMIT_WAITS as u64 * LONGEST_RATE_LIMIT_WAIT.as_secs() + 60);

/// Whether `run` stopped without saying so (its process died or was killed): unfinished, and no
/// page recorded for longer than a live run goes without one (a page, or the server's sweep
/// interval if longer, and the database's deadline for the write).
pub fn interrupted(run: &crate::store::SweepRow, config: &Config, now_ms: i64) -> bool {
    let silent_for = now_ms - run.progressed_at.unwrap_or(run.started_at);
    let limit = config.reconcile_interval.max(LONGEST_PAGE) + config.db_timeout;
    run.finished_at.is_none() && silent_for > limit.as_millis() as i64
}

/// What to list.
#[derive(Debug, Clone)]
pub struct Request {
    /// `created[gte]`, unix seconds.
    pub since: i64,
    pub types: TypeFilter,
    /// Every event in the window, not only those some endpoint has not acknowledged.
    pub all: bool,
    /// Store nothing; list what would be added.
    pub dry_run: bool,
}

impl Request {
    /// Without `--type`, a type allow-list (`DEFERRAL_EVENT_TYPES`) short enough for Stripe to
    /// filter on narrows the listing: events the ingest would ignore are not worth a page.
    pub fn narrowed_to(mut self, config: &Config) -> Request {
        if self.types == TypeFilter::All
            && !config.event_types.is_empty()
            && let Ok(TypeFilter::Exact(types)) = TypeFilter::parse(&config.event_types)
        {
            self.types = TypeFilter::Exact(types);
        }
        self
    }
}

/// A listed event that is not stored yet (what a dry run shows).
#[derive(Debug, Clone, PartialEq)]
pub struct Missing {
    pub id: String,
    pub event_type: String,
    /// Unix seconds.
    pub created: i64,
}

/// What a run has done so far.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub pages: u64,
    /// Events Stripe listed.
    pub seen: u64,
    /// New executions (a dry run: events that would get one).
    pub added: u64,
    /// Listed but not in `DEFERRAL_EVENT_TYPES`.
    pub ignored: u64,
    /// Listed but not readable as an event (logged, skipped).
    pub unreadable: u64,
    /// Connected accounts whose events were listed (as the account), beside the platform's.
    pub accounts: u64,
    /// The oldest `created` listed so far: how far back the listing has come.
    pub reached: Option<i64>,
    /// A dry run: the events that would be added, newest first.
    pub missing: Vec<Missing>,
}

impl Tally {
    pub fn counts(&self) -> SweepCounts {
        SweepCounts {
            pages: self.pages as i64,
            seen: self.seen as i64,
            added: self.added as i64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0}")]
    Stripe(#[from] StripeError),
    #[error("cannot store the listed events: {0}")]
    Store(#[from] StoreError),
    #[error("stopped: the server shut down")]
    ShutDown,
    #[error("interrupted: this process no longer leads; the new leader sweeps next")]
    LostLead,
}

/// A run that stopped early: what it did before, and why.
#[derive(Debug)]
pub struct Stopped {
    pub tally: Tally,
    pub error: ReconcileError,
}

/// Where a run stores what it finds: the same group-committed ingest as webhook deliveries.
pub struct Reconciler<'a> {
    pub client: &'a stripe::Client,
    pub ingest: &'a Ingest,
    pub store: &'a Store,
    pub config: &'a Config,
    /// The run's record (`reconcile_sweeps`), given its counts after every page; none for a dry run.
    pub record: Option<i64>,
}

impl Reconciler<'_> {
    /// Lists every page of `request`, the platform's events and then each known connected
    /// account's, and stores each page before asking for the next, so a failure part-way keeps
    /// what came before. `stop` is asked before each page (a reason ends the run there);
    /// `on_page` hears after each page.
    pub async fn run(
        &self,
        request: &Request,
        stop: impl Fn() -> Option<ReconcileError>,
        mut on_page: impl FnMut(&Tally),
    ) -> Result<Tally, Box<Stopped>> {
        let mut tally = Tally::default();
        // Accounts of the last 30 days, not of the window only: an account all of whose events
        // in the window went missing is known from before it.
        let known_since = now_ms() / 1000 - STRIPE_LISTS_EVENTS_FOR.as_secs() as i64;
        let accounts = match self
            .store
            .bounded("connected accounts", self.store.connect_accounts(known_since))
            .await
        {
            Ok(accounts) => accounts,
            Err(e) => return Err(Box::new(Stopped { tally, error: e.into() })),
        };
        for account in std::iter::once(None).chain(accounts.iter().map(|a| Some(a.as_str()))) {
            if let Err(error) = self.run_as(request, account, &stop, &mut tally, &mut on_page).await {
                return Err(Box::new(Stopped { tally, error }));
            }
            tally.accounts += u64::from(account.is_some());
        }
        Ok(tally)
    }

    /// Every page of `request` listed as `account` (the platform's own events when `None`).
    async fn run_as(
        &self,
        request: &Request,
        account: Option<&str>,
        stop: &impl Fn() -> Option<ReconcileError>,
        tally: &mut Tally,
        on_page: &mut impl FnMut(&Tally),
    ) -> Result<(), ReconcileError> {
        let mut query = EventListQuery {
            created_gte: request.since,
            delivery_success: (!request.all).then_some(false),
            types: request.types.clone(),
            limit: PAGE_LIMIT,
            starting_after: None,
        };
        loop {
            if let Some(reason) = stop() {
                return Err(reason);
            }
            let page = self.list(&query, account).await?;
            tally.pages += 1;
            tally.seen += page.data.len() as u64;
            let now = now_ms();
            let mut new = Vec::with_capacity(page.data.len());
            for raw in &page.data {
                match admit(raw.get().as_bytes(), now, self.config, Origin::Reconciled) {
                    Ok(Admitted::New(mut event)) => {
                        tally.reached = Some(tally.reached.map_or(event.created, |r| r.min(event.created)));
                        // Listed as the account: its execution acts as the account whether or
                        // not Stripe wrote `account` into the listed event.
                        if event.account.is_none() {
                            event.account = account.map(str::to_string);
                        }
                        new.push(event);
                    }
                    Ok(Admitted::Ignored { .. }) => tally.ignored += 1,
                    Err(reason) => {
                        tracing::warn!(%reason, "Stripe listed an event Deferral cannot read; skipped");
                        tally.unreadable += 1;
                    }
                }
            }
            self.store_page(request, new, tally).await?;
            if let Some(id) = self.record {
                let progressed = self.store.sweep_progressed(id, tally.counts());
                self.store.bounded("sweep record", progressed).await?;
            }
            on_page(tally);
            match page.last_id() {
                Some(last) if page.has_more => query.starting_after = Some(last),
                _ => return Ok(()),
            }
        }
    }

    /// One page of the list; a 429 is waited out a few times (Stripe says how long). The client
    /// turns Stripe's rate-limit 429s into `OverBudget` (its budget slows down and pauses the
    /// endpoint meanwhile); a 429 that is no rate limit (`lock_timeout`) stays an `Api` error.
    async fn list(&self, query: &EventListQuery, account: Option<&str>) -> Result<stripe::EventPage, StripeError> {
        let mut waits = 0;
        loop {
            let error = match self.client.list_events(query, account).await {
                Ok(page) => return Ok(page),
                Err(e) => e,
            };
            match error.wait_before_retry() {
                Some(wait) if waits < RATE_LIMIT_WAITS => {
                    waits += 1;
                    let wait = wait.min(LONGEST_RATE_LIMIT_WAIT);
                    tracing::info!(?wait, %error, "Stripe's rate limit: waiting before asking for the page again");
                    tokio::time::sleep(wait).await;
                }
                _ => return Err(error),
            }
        }
    }

    async fn store_page(&self, request: &Request, events: Vec<NewEvent>, tally: &mut Tally) -> Result<(), StoreError> {
        if request.dry_run {
            let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
            let stored = self
                .store
                .bounded("stored events", self.store.stored_events(&ids))
                .await?;
            for e in events.iter().filter(|e| !stored.contains(&e.id)) {
                tally.missing.push(Missing {
                    id: e.id.clone(),
                    event_type: e.event_type.clone(),
                    created: e.created,
                });
                tally.added += 1;
            }
            return Ok(());
        }
        // Submitted together, they are written in one transaction by the ingest's writers.
        let outcomes = futures::future::join_all(events.into_iter().map(|e| self.ingest.submit(e))).await;
        for outcome in outcomes {
            match outcome {
                Ok(o) if !o.duplicate => tally.added += 1,
                Ok(_) => {}
                Err(e) => return Err(unshared(e)),
            }
        }
        Ok(())
    }
}

/// The ingest shares one error among a batch's callers; this run's copy (as text when shared).
fn unshared(e: std::sync::Arc<StoreError>) -> StoreError {
    std::sync::Arc::try_unwrap(e).unwrap_or_else(|shared| StoreError::Db(sqlx::Error::Protocol(shared.to_string())))
}

/// The window's start (unix seconds) for `--since` or `--from`: within Stripe's 30 days.
pub fn window_start(since: Duration, from: Option<&str>, now_s: i64) -> Result<i64, String> {
    let oldest = now_s - STRIPE_LISTS_EVENTS_FOR.as_secs() as i64;
    let Some(from) = from else {
        return Ok(now_s - since.as_secs() as i64);
    };
    let at = chrono::DateTime::parse_from_rfc3339(from)
        .map_err(|e| format!("--from `{from}` is not an RFC 3339 time such as 2026-11-29T14:00:00Z: {e}"))?
        .timestamp();
    if at < oldest {
        return Err(format!(
            "--from {from} is {} days ago; Stripe lists events for 30 days only",
            (now_s - at) / 86_400
        ));
    }
    if at > now_s {
        return Err(format!("--from {from} is in the future"));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn at(unix: i64) -> String {
        chrono::DateTime::from_timestamp(unix, 0).unwrap().to_rfc3339()
    }

    #[test]
    fn the_window_starts_since_or_from_and_stays_within_30_days() {
        assert_eq!(window_start(Duration::from_secs(3600), None, NOW), Ok(NOW - 3600));
        assert_eq!(
            window_start(Duration::from_secs(3600), Some(&at(NOW - 86_400)), NOW),
            Ok(NOW - 86_400)
        );
        let e = window_start(Duration::from_secs(3600), Some(&at(NOW - 31 * 86_400)), NOW).unwrap_err();
        assert!(e.contains("31 days ago") && e.contains("30 days"), "{e}");
        assert!(
            window_start(Duration::ZERO, Some("yesterday"), NOW)
                .unwrap_err()
                .contains("RFC 3339")
        );
        assert!(
            window_start(Duration::ZERO, Some(&at(NOW + 60)), NOW)
                .unwrap_err()
                .contains("future")
        );
    }
}
