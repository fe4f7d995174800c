//! Gauges: executions by state, backlog and its age.

use std::time::Duration;

use super::Service;
use crate::store::{Store, StoreError, now_ms};

pub struct Gauges {
    store: Store,
}

/// What the gauges were set to.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct GaugesReport {
    /// Executions per state.
    pub states: Vec<(String, i64)>,
    /// Executions due but not started.
    pub backlog: i64,
    /// How long the oldest of them has waited, in seconds.
    pub oldest_age_seconds: f64,
}

impl Gauges {
    pub fn new(store: Store) -> Gauges {
        Gauges { store }
    }
}

impl Service for Gauges {
    type Report = GaugesReport;

    fn name(&self) -> &'static str {
        "gauges"
    }

    fn every(&self) -> Duration {
        Duration::from_secs(5)
    }

    async fn run_once(&self) -> Result<GaugesReport, StoreError> {
        let store = &self.store;
        let states = store.bounded("gauges", store.count_by_state()).await?;
        for (state, n) in &states {
            metrics::gauge!("deferral_executions", "state" => state.clone()).set(*n as f64);
        }
        let (due, oldest) = store.bounded("gauges", store.backlog()).await?;
        metrics::gauge!("deferral_backlog").set(due as f64);
        let age = oldest.map_or(0.0, |at| (now_ms() - at).max(0) as f64 / 1000.0);
        metrics::gauge!("deferral_backlog_oldest_age_seconds").set(age);
        Ok(GaugesReport {
            states,
            backlog: due,
            oldest_age_seconds: age,
        })
    }
}
