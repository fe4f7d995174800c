//! `deferral trigger <event-type>`: builds a realistic event, signs it exactly as Stripe
//! does and posts it to a running Deferral, like `stripe trigger` does for Stripe.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use super::dev::SecretFile;
use crate::fixtures::Fixture;
use crate::webhook::signature;

#[derive(Args, Debug, Clone)]
pub struct TriggerArgs {
    /// The event type to send, e.g. `customer.created` (an unknown one lists the known ones).
    pub event_type: String,
    /// The Deferral to send it to.
    #[arg(long, env = "DEFERRAL_URL", default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// The server's webhook secret; unset: the one `deferral dev` generated.
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// How many events to send, each a new one.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub count: u32,
    /// Send live-mode events (test mode by default).
    #[arg(long)]
    pub livemode: bool,
    /// The `api_version` the events claim; their objects take its shape (e.g. 2024-06-20 for the
    /// generation before basil).
    #[arg(long, value_parser = crate::stripe::version::parse, default_value = crate::stripe::API_VERSION)]
    pub api_version: String,
    #[command(flatten)]
    pub secret_file: SecretFile,
}

/// One delivered event.
#[derive(Debug, Clone)]
pub struct Sent {
    pub event_id: String,
    pub execution_id: String,
    pub duplicate: bool,
}

pub async fn run(args: TriggerArgs) -> anyhow::Result<()> {
    for sent in send(&args).await? {
        let base = args.url.trim_end_matches('/');
        let note = if sent.duplicate { " (already delivered)" } else { "" };
        println!(
            "{} {} → execution {}{note}",
            args.event_type, sent.event_id, sent.execution_id
        );
        println!("  {base}/executions/{}", sent.execution_id);
    }
    Ok(())
}

/// Sends `count` new events and returns what the server answered for each.
pub async fn send(args: &TriggerArgs) -> anyhow::Result<Vec<Sent>> {
    Fixture::new(&args.event_type)?; // an unknown type fails before anything is sent
    let secret = secret(args)?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let endpoint = format!("{}/webhooks/stripe", args.url.trim_end_matches('/'));
    let mut sent = Vec::with_capacity(args.count as usize);
    for _ in 0..args.count {
        let fixture = Fixture::new(&args.event_type)?
            .livemode(args.livemode)
            .api_version(&args.api_version);
        let body = fixture.to_json();
        let header = signature::header_for(&secret, chrono::Utc::now().timestamp(), body.as_bytes());
        let response = client
            .post(&endpoint)
            .header("Stripe-Signature", header)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .with_context(|| format!("cannot reach Deferral at {endpoint}; is it running?"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = answer["message"].as_str().unwrap_or("no message");
            anyhow::bail!("Deferral refused the event ({status}): {message}");
        }
        let execution_id = answer["execution_id"]
            .as_str()
            .with_context(|| format!("Deferral answered {status} without an execution id: {answer}"))?;
        sent.push(Sent {
            event_id: fixture.event_id().to_string(),
            execution_id: execution_id.to_string(),
            duplicate: answer["duplicate"] == true,
        });
    }
    Ok(sent)
}

fn secret(args: &TriggerArgs) -> anyhow::Result<String> {
    // A rotation list signs with its first secret, as Stripe signs with the newest.
    let given = args
        .secret
        .as_deref()
        .and_then(|s| s.split(',').map(str::trim).find(|s| !s.is_empty()));
    if let Some(secret) = given {
        return Ok(secret.to_string());
    }
    args.secret_file.read()?.with_context(|| {
        format!(
            "no webhook secret: pass --secret whsec_… (the server's STRIPE_WEBHOOK_SECRET), \
             or start the server with `deferral dev`, which writes one to {}",
            args.secret_file.dev_secret_file.display()
        )
    })
}
