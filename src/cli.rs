//! The command line: `deferral` serves; subcommands are tools around it.

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser, Debug)]
#[command(
    name = "deferral",
    version,
    about = "Stripe webhooks, verified, stored and executed durably."
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the webhook endpoint, the executor and the console (the default).
    Serve(Config),
    /// Serve for local development: without STRIPE_WEBHOOK_SECRET, a generated one is used and printed.
    Dev(crate::tools::dev::DevArgs),
    /// Send a signed sample event of a type to a running Deferral, as Stripe would.
    Trigger(crate::tools::trigger::TriggerArgs),
    /// Fill a fresh database with a varied history of executions to explore the console.
    Demo(crate::tools::demo::DemoArgs),
    /// Store the events Stripe could not deliver, read from its events list (GET /v1/events).
    Reconcile(crate::tools::reconcile::ReconcileArgs),
}

impl Cli {
    /// The log's default filter (`RUST_LOG` replaces it). The demo's failed attempts are the
    /// history it writes, not news: its executor's attempts are left out.
    pub fn log_filter(&self) -> &'static str {
        match self.command {
            Some(Command::Demo(_)) => "info,sqlx=warn,deferral::executor::worker=off",
            _ => crate::telemetry::DEFAULT_LOG_FILTER,
        }
    }

    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            None => serve(self.serve).await,
            Some(Command::Serve(config)) => serve(config).await,
            Some(Command::Dev(args)) => crate::tools::dev::run(args).await,
            Some(Command::Trigger(args)) => crate::tools::trigger::run(args).await,
            Some(Command::Demo(args)) => crate::tools::demo::run(args).await,
            Some(Command::Reconcile(args)) => crate::tools::reconcile::run(args).await,
        }
    }
}

/// Production: never an invented webhook secret.
async fn serve(config: Config) -> anyhow::Result<()> {
    crate::tools::dev::check_production(&config)?;
    crate::Application::serve(config).await
}
