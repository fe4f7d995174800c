//! The server's periodic sweep: every `DEFERRAL_RECONCILE_INTERVAL`, the events of the last
//! `DEFERRAL_RECONCILE_WINDOW` that Stripe could not deliver are listed and the missing ones
//! stored. A maintenance service the leader alone runs (`executor::maintenance`): on PostgreSQL
//! one process sweeps, and another takes over when it stops; a process whose turn comes soon
//! after another's sweep (a new leader) leaves it be. A sweep whose process loses the lead
//! stops before its next page and is recorded as interrupted; the new leader leaves an
//! unfinished sweep of another process be while that one may still hold the lead (a lease),
//! so the two never list at once. `deferral reconcile` runs beside it.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{ReconcileError, Reconciler, Request, Stopped, Tally};
use crate::config::Config;
use crate::executor::maintenance::{self, Duty, ELECT_EVERY, Elector, Lead, Service};
use crate::store::{Store, StoreError, SweepCounts, now_ms};
use crate::stripe::{self, TypeFilter};
use crate::webhook::Ingest;

/// What the sweep needs, held by its task.
pub struct Sweeper {
    config: Arc<Config>,
    store: Store,
    ingest: Ingest,
    client: stripe::Client,
    owner: String,
    /// How long another process's unfinished sweep may still be running (its lease).
    elector: Elector,
    /// Cuts a sweep short (what it stored stays, and the record says so).
    stop: CancellationToken,
}

/// What one turn did.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepReport {
    /// Another process swept most of an interval ago: its sweep stands for this turn.
    SweptRecently { by: String },
    /// Another process's sweep is unfinished and that process may still lead: it is left be.
    InProgress { by: String },
    /// Swept: what it found, and why it stopped early if it did.
    Swept { counts: SweepCounts, error: Option<String> },
}

/// Starts the sweep when a key is set (`client`: the executor's, so both spend one Stripe budget)
/// and the interval is not `0`. It runs while this process leads (the executor's election, see
/// `Elector::shared`); the first one as soon as it does (a server back from a long stop catches
/// up without waiting an interval).
pub fn spawn(
    config: Arc<Config>,
    client: Option<stripe::Client>,
    store: Store,
    ingest: Ingest,
    stop: CancellationToken,
) -> Option<JoinHandle<()>> {
    let Some(client) = client else {
        tracing::info!("STRIPE_SECRET_KEY is not set: no periodic reconciliation from Stripe's events list");
        return None;
    };
    if config.reconcile_interval.is_zero() {
        tracing::info!("DEFERRAL_RECONCILE_INTERVAL is 0: the periodic reconciliation is off");
        return None;
    }
    let elector = Elector::shared(&store, ELECT_EVERY);
    let sweeper = Sweeper {
        client,
        owner: crate::executor::owner_id(),
        elector: elector.clone(),
        config,
        store,
        ingest,
        stop: stop.clone(),
    };
    Some(maintenance::spawn(sweeper, Duty::Leader(elector), stop))
}

impl Service for Sweeper {
    type Report = SweepReport;

    fn name(&self) -> &'static str {
        "sweep"
    }

    fn every(&self) -> Duration {
        self.config.reconcile_interval
    }

    /// One turn: sweeps unless another process swept within the interval. No database call
    /// waits past the deadline (`DEFERRAL_DB_TIMEOUT`).
    async fn run_once(&self) -> Result<SweepReport, StoreError> {
        self.sweep(&Lead::default()).await
    }

    /// Watches the lead itself, so that a sweep cut short is recorded as such.
    async fn run_while(&self, lead: &Lead) -> Option<Result<SweepReport, StoreError>> {
        Some(self.sweep(lead).await)
    }

    fn failed(&self, e: &StoreError) {
        tracing::warn!(error = %e, "reconciliation sweep could not run; will try again");
    }
}

impl Sweeper {
    async fn sweep(&self, lead: &Lead) -> Result<SweepReport, StoreError> {
        let now = now_ms();
        let interval = self.config.reconcile_interval.as_millis() as i64;
        let recent = self
            .store
            .bounded("sweeps", self.store.recent_sweeps(Some("sweep"), 1))
            .await?;
        if let Some(last) = recent.first().filter(|last| last.owner != self.owner) {
            let by = last.owner.clone();
            // A former leader learns it lost the lead within its lease: until then its sweep
            // may be listing still.
            if last.finished_at.is_none() && last.started_at > now - self.elector.lease().as_millis() as i64 {
                tracing::debug!(%by, "another process's sweep is still running");
                return Ok(SweepReport::InProgress { by });
            }
            // Processes tick on their own clocks; a sweep by another one most of an interval
            // ago stands for this turn (its window overlaps this one's all but a few minutes).
            if last.started_at > now - interval * 9 / 10 {
                tracing::debug!(%by, "swept recently by another process");
                return Ok(SweepReport::SweptRecently { by });
            }
        }
        let request = Request {
            since: now / 1000 - self.config.reconcile_window.as_secs() as i64,
            types: TypeFilter::All,
            all: false,
            dry_run: false,
        }
        .narrowed_to(&self.config);
        let started = self.store.sweep_started(request.since, "sweep", &self.owner);
        let id = self.store.bounded("sweep record", started).await?;
        let reconciler = Reconciler {
            client: &self.client,
            ingest: &self.ingest,
            store: &self.store,
            config: &self.config,
            record: Some(id),
        };
        // Before each page: a process that no longer leads (told so, or its lease ran out by
        // its own clock while it was paused) lists no more.
        let stopped = || {
            if self.stop.is_cancelled() {
                Some(ReconcileError::ShutDown)
            } else if !lead.held() {
                Some(ReconcileError::LostLead)
            } else {
                None
            }
        };
        // What the pages so far found, for the record when the sweep is cut short mid-page.
        let progress = std::sync::Mutex::new(Tally::default());
        let cut = |error| -> Result<Tally, Box<Stopped>> {
            Err(Box::new(Stopped {
                tally: progress.lock().expect("sweep progress").clone(),
                error,
            }))
        };
        let outcome = tokio::select! {
            outcome = reconciler.run(&request, stopped, |t| *progress.lock().expect("sweep progress") = t.clone()) => outcome,
            _ = self.stop.cancelled() => cut(ReconcileError::ShutDown),
            _ = lead.lost() => cut(ReconcileError::LostLead),
        };
        let (tally, error) = match outcome {
            Ok(tally) => (tally, None),
            Err(stopped) => (stopped.tally, Some(stopped.error.to_string())),
        };
        match &error {
            None if tally.added > 0 => tracing::info!(
                pages = tally.pages,
                seen = tally.seen,
                added = tally.added,
                "reconciled events Stripe could not deliver"
            ),
            None => tracing::debug!(
                pages = tally.pages,
                seen = tally.seen,
                "reconciliation sweep: nothing missing"
            ),
            Some(e) => tracing::warn!(
                error = %e,
                pages = tally.pages,
                seen = tally.seen,
                added = tally.added,
                "reconciliation sweep stopped early; what it stored stays, the next sweep goes on"
            ),
        }
        let finished = self.store.sweep_finished(id, tally.counts(), error.as_deref());
        self.store.bounded("sweep record", finished).await?;
        let keep = self.config.retention.max(Duration::from_secs(86_400));
        let prune = self.store.prune_sweeps(now - keep.as_millis() as i64);
        self.store.bounded("sweeps", prune).await?;
        Ok(SweepReport::Swept {
            counts: tally.counts(),
            error,
        })
    }
}
