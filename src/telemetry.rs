//! Logs (tracing) and metrics (Prometheus text through the `metrics` crate).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// What the log keeps unless `RUST_LOG` says otherwise.
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn";

/// Structured logs to stderr; `RUST_LOG` filters (default [`DEFAULT_LOG_FILTER`]).
pub fn init() {
    init_with(DEFAULT_LOG_FILTER)
}

/// As [`init`], with another default filter (a tool whose log would say little of use).
pub fn init_with(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("deferral_attempt_duration_seconds".into()),
                    &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 300.0],
                )
                .expect("static buckets are valid")
                .set_buckets_for_metric(
                    Matcher::Full("deferral_stripe_budget_wait_seconds".into()),
                    &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0],
                )
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests embedding several servers).
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
