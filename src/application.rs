//! Where Deferral is put together: the one place that opens the store, binds the listener and
//! starts every part (ingest, executor, alerter, reconcile sweep, HTTP). `deferral serve`,
//! `deferral dev` and the tests all start it through [`Application::build`].

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::executor::{Executor, alerter};
use crate::store::Store;
use crate::webhook::Ingest;
use crate::{console, handlers, http, reconcile, telemetry};

/// A built Deferral: the listener bound (its port known, `LEPTOS_SITE_ADDR` may ask for port 0)
/// and the executor, alerter, ingest and sweep started. Requests are answered once
/// [`run_until_stopped`](Application::run_until_stopped) runs; until then they wait in the
/// listener's backlog.
pub struct Application {
    addr: SocketAddr,
    store: Store,
    shutdown: CancellationToken,
    config: Arc<Config>,
    listener: TcpListener,
    router: axum::Router,
    executor: Executor,
    alerter: JoinHandle<()>,
    sweep: Option<JoinHandle<()>>,
}

impl Application {
    /// Checks the configuration, opens (and migrates) the store, binds the listener and starts
    /// every part of the service.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
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
        let executor = Executor::start(store.clone(), &config, job, shutdown.child_token());
        let alerter = alerter::spawn(
            store.clone(),
            alerter::AlertSettings::from_config(&config),
            shutdown.child_token(),
        );
        let ingest = Ingest::start(store.clone(), config.clone(), executor.handle());
        let sweep = reconcile::sweep::spawn(
            config.clone(),
            stripe,
            store.clone(),
            ingest.clone(),
            shutdown.child_token(),
        );
        let state = http::AppState::new(config.clone(), store.clone(), executor.handle(), ingest);
        let router = http::router(state);
        tracing::info!("listening on http://{addr}");
        Ok(Application {
            addr,
            store,
            shutdown,
            config,
            listener,
            router,
            executor,
            alerter,
            sweep,
        })
    }

    /// The address it listens on (with the port chosen when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Cancelling this stops the application: see [`run_until_stopped`](Self::run_until_stopped).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Builds the application and serves until SIGINT or SIGTERM (`deferral serve` and `dev`).
    pub async fn serve(config: Config) -> anyhow::Result<()> {
        let app = Application::build(config).await?;
        app.stop_on_signals();
        app.run_until_stopped().await
    }

    /// SIGINT or SIGTERM stops the application (what `deferral serve` wants; tests stop it
    /// through [`shutdown_token`](Self::shutdown_token) instead).
    pub fn stop_on_signals(&self) {
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        });
    }

    /// Serves until the shutdown token is cancelled, then stops accepting, lets running attempts
    /// finish (up to `DEFERRAL_SHUTDOWN_GRACE`) and waits for every part to end.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            shutdown,
            config,
            listener,
            router,
            executor,
            alerter,
            sweep,
            ..
        } = self;
        http::serve::serve(listener, router, &config.limits, shutdown).await;
        if let Some(sweep) = sweep {
            let _ = sweep.await;
        }
        executor.stopped().await;
        let _ = alerter.await;
        Ok(())
    }

    /// Runs in the background: for tests and benchmarks, which go on meanwhile and stop it
    /// with [`Running::stop`].
    pub fn spawn(self) -> Running {
        Running {
            addr: self.addr,
            store: self.store.clone(),
            shutdown: self.shutdown.clone(),
            task: tokio::spawn(self.run_until_stopped()),
        }
    }
}

/// An application running in the background (see [`Application::spawn`]).
pub struct Running {
    pub addr: SocketAddr,
    pub store: Store,
    pub shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting, lets running attempts finish (up to the grace period), and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }
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
