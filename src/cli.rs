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
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            None => crate::serve(self.serve).await,
            Some(Command::Serve(config)) => crate::serve(config).await,
        }
    }
}
