use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = deferral::cli::Cli::parse();
    deferral::telemetry::init_with(cli.log_filter());
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once, in plain words: the log goes to the same stderr, so logging it too would
            // print it twice.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
