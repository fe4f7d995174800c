//! Deferral: Stripe webhooks taken off the request path, verified, stored durably,
//! executed in the background with retries, and steered from a console.

pub mod api;
pub mod cli;
pub mod config;
pub mod console;
pub mod executor;
pub mod fixtures;
pub mod handlers;
pub mod http;
pub mod reconcile;
pub mod store;
pub mod stripe;
pub mod telemetry;
pub mod tools;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::store::Store;

/// A started Deferral: listening, executing, until `shutdown` is cancelled.
pub struct Running {
    pub addr: SocketAddr,
    pub store: Store,
    pub shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting, lets running attempts finish (up to the grace period), and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }

    /// Waits until the server stops by itself (after `shutdown` is cancelled).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await?
    }
}

/// Opens the store, binds the listener and starts every part of the service.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    console::check_config(&config)?;
    config.validate().map_err(anyhow::Error::msg)?;
    let config = Arc::new(config);
    telemetry::prometheus(); // install the recorder before anything counts
    let store = Store::open_with(&config.database_url, config.db_timeout).await?;
    tracing::info!(backend = store.backend(), "database ready");
    let listener = TcpListener::bind(config.site_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.site_addr))?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();

    let job = Arc::new(handlers::Processor::from_config(&config, store.clone()));
    let stripe = job.stripe().cloned();
    let executor = executor::Executor::start(store.clone(), &config, job, shutdown.child_token());
    let alerter = executor::alerter::spawn(
        store.clone(),
        executor::alerter::AlertSettings::from_config(&config),
        shutdown.child_token(),
    );
    let state = http::AppState::new(config.clone(), store.clone(), executor.handle());
    let sweep = reconcile::sweep::spawn(
        config.clone(),
        stripe,
        store.clone(),
        state.ingest.clone(),
        shutdown.child_token(),
    );
    let router = http::router(state);

    let serve_shutdown = shutdown.clone();
    let task = tokio::spawn(async move {
        http::serve::serve(listener, router, &config.limits, serve_shutdown).await;
        if let Some(sweep) = sweep {
            let _ = sweep.await;
        }
        executor.stopped().await;
        let _ = alerter.await;
        Ok(())
    });
    tracing::info!("listening on http://{addr}");
    Ok(Running {
        addr,
        store,
        shutdown,
        task,
    })
}

/// Serves until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let running = start(config).await?;
    let shutdown = running.shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    running.wait().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
