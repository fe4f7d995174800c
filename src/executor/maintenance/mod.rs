//! Small services, each with one job, beside the workers.
//!
//! Each service is a struct holding its settings and what it works on, with a `run_once` that
//! does its job once and says what it did; [`spawn`] runs one every interval until stopped. Some
//! run in every process (the heartbeat, the fencer, the checkpointer, the gauges, the watchdog and
//! the PostgreSQL listener: they look after this process's attempts or report on it); the rest are
//! needed once per database and run only in the elected leader ([`Elector`]): the rescuer, the
//! pruner, the discarder, and the reconciliation sweep (`reconcile::sweep`).

mod checkpointer;
mod discarder;
mod elector;
mod fencer;
mod gauges;
mod heartbeat;
mod listener;
mod pruner;
mod rescuer;
mod watchdog;

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::worker::Context;
use crate::store::StoreError;

pub use checkpointer::Checkpointer;
pub use discarder::{Discarder, DiscarderReport};
pub use elector::{ELECT_EVERY, Elector};
pub use fencer::{Fencer, FencerReport};
pub use gauges::{Gauges, GaugesReport};
pub use heartbeat::{Heartbeat, HeartbeatReport};
pub use pruner::{PRUNE_BATCH, Pruner, PrunerReport};
pub use rescuer::{Rescuer, RescuerReport};
use watchdog::Watchdog;

/// One maintenance service: what it does once, and how often.
pub trait Service: Send + Sync + 'static {
    /// What one run did.
    type Report: std::fmt::Debug + Send;

    /// Its name in the log.
    fn name(&self) -> &'static str;

    /// How long from one run to the next.
    fn every(&self) -> Duration;

    /// Does the job once.
    fn run_once(&self) -> impl Future<Output = Result<Self::Report, StoreError>> + Send;

    /// Does the job once while `lead` holds; `None` when cut short because it no longer does.
    /// By default the run is dropped where it waits (a transaction rolls back); a service with
    /// something to say about an unfinished run watches `lead` itself.
    fn run_while(&self, lead: &Lead) -> impl Future<Output = Option<Result<Self::Report, StoreError>>> + Send {
        async move {
            tokio::select! {
                done = self.run_once() => Some(done),
                _ = lead.lost() => None,
            }
        }
    }

    /// A run failed; the next one tries again.
    fn failed(&self, e: &StoreError) {
        tracing::warn!(service = self.name(), error = %e, "maintenance failed; will try again");
    }
}

/// A run's hold on the lead: for a leader-only service, lost when this process stops leading
/// (the election says so, or its lease ran out by this process's clock); never otherwise.
#[derive(Clone, Default)]
pub struct Lead {
    elector: Option<Elector>,
    lost: CancellationToken,
}

impl Lead {
    /// Whether the run may go on: checked before each step that must not overlap another
    /// leader's (a process resumed after a pause knows at once, before any timer fires).
    pub fn held(&self) -> bool {
        !self.lost.is_cancelled() && self.elector.as_ref().is_none_or(Elector::holds_lead)
    }

    /// Resolves once the lead is lost.
    pub async fn lost(&self) {
        self.lost.cancelled().await
    }

    /// Marks the lead lost when the elector says so; never resolves.
    async fn watch(&self) {
        if let Some(elector) = &self.elector {
            elector.lost().await;
            self.lost.cancel();
        }
        std::future::pending().await
    }
}

/// Which processes run a service.
#[derive(Clone)]
pub enum Duty {
    /// Every process: it looks after this process's own attempts, or reports on it.
    EveryProcess,
    /// Only the leader (once per database); one that becomes leader runs it at once.
    Leader(Elector),
}

/// Runs `service` every `service.every()` until `stop` (the first run at once), where its duty
/// says: a run the leader alone does is skipped while this process does not lead.
pub fn spawn<S: Service>(service: S, duty: Duty, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(run(service, duty, stop))
}

async fn run<S: Service>(service: S, duty: Duty, stop: CancellationToken) {
    let mut interval = tokio::time::interval(service.every());
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut leader, elector) = match &duty {
        Duty::EveryProcess => (None, None),
        Duty::Leader(elector) => (Some(elector.watch()), Some(elector.clone())),
    };
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = elected(&mut leader) => interval.reset(),
            _ = stop.cancelled() => return,
        }
        if elector.as_ref().is_some_and(|e| !e.holds_lead()) {
            continue;
        }
        let lead = Lead {
            elector: elector.clone(),
            lost: CancellationToken::new(),
        };
        // A run of the leader alone is cut short when the lead is lost mid-way, so that it does
        // not go on beside the next leader's.
        let outcome = tokio::select! {
            outcome = service.run_while(&lead) => outcome,
            _ = lead.watch() => unreachable!("the lead's watch never ends"),
        };
        match outcome {
            Some(Ok(_)) => {}
            Some(Err(e)) => service.failed(&e),
            None => tracing::info!(service = service.name(), "cut short: this process no longer leads"),
        }
    }
}

/// Resolves when this process becomes leader; never without a leader-only duty.
async fn elected(leader: &mut Option<watch::Receiver<bool>>) {
    let Some(leader) = leader else {
        return std::future::pending().await;
    };
    loop {
        if leader.changed().await.is_err() {
            // The election ended (its process is stopping): nothing more will change.
            return std::future::pending().await;
        }
        if *leader.borrow_and_update() {
            return;
        }
    }
}

/// How often the rescuer runs: expired leases are taken back within this.
fn rescue_every(lease: Duration) -> Duration {
    (lease / 2).min(Duration::from_secs(5))
}

/// The election the executor takes part in: non-leaders try again as often as the rescuer runs,
/// so a dead leader's work is taken over no later than its rescuer would have run.
pub(super) fn join_election(ctx: &Context) -> Elector {
    Elector::shared(&ctx.store, rescue_every(ctx.settings.lease))
}

pub(super) fn spawn_all(ctx: &Context, elector: Elector, stop: CancellationToken) -> Vec<JoinHandle<()>> {
    let lease = ctx.settings.lease;
    let leader = Duty::Leader(elector);
    let all = Duty::EveryProcess;
    let (store, handle) = (&ctx.store, &ctx.handle);
    let mut services = vec![
        spawn(
            Heartbeat::new(store.clone(), handle.clone(), lease),
            all.clone(),
            stop.clone(),
        ),
        spawn(Fencer::new(handle.clone(), lease), all.clone(), stop.clone()),
        spawn(
            Rescuer::new(store.clone(), handle.clone(), lease, rescue_every(lease)),
            leader.clone(),
            stop.clone(),
        ),
        spawn(
            Discarder::new(store.clone(), ctx.settings.poll_interval),
            leader.clone(),
            stop.clone(),
        ),
        spawn(Pruner::new(store.clone(), ctx.settings.retention), leader, stop.clone()),
        spawn(Checkpointer::new(store.clone()), all.clone(), stop.clone()),
        spawn(Gauges::new(store.clone()), all.clone(), stop.clone()),
        spawn(
            Watchdog::new(store.clone(), handle.clone(), &ctx.settings),
            all,
            stop.clone(),
        ),
    ];
    services.extend(listener::spawn(store, handle.clone(), stop));
    services
}

/// An event of `event_type` due a second ago, for the services' tests (each its own object).
#[cfg(test)]
fn due_event(id: &str, event_type: &str) -> crate::store::NewEvent {
    crate::store::NewEvent {
        id: id.into(),
        event_type: event_type.into(),
        created: 1,
        livemode: false,
        api_version: None,
        account: None,
        object_id: Some(format!("cus_{id}")),
        object_type: Some("customer".into()),
        payload: format!(
            r#"{{"id":"{id}","object":"event","type":"{event_type}","created":1,"data":{{"object":{{}}}}}}"#
        ),
        run_at: crate::store::now_ms() - 1000,
        discard_at: None,
        max_attempts: 3,
        origin: domain::model::Origin::Webhook,
    }
}
