//! `deferral reconcile`: stores the events Stripe could not deliver, read from its events list,
//! as if each had been delivered (one already stored keeps its execution). A progress bar on a
//! terminal, one line per page otherwise; the summary and a dry run's list on stdout.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::config::{Config, reconcile_window};
use crate::executor::ExecutorHandle;
use crate::reconcile::{Reconciler, Request, Tally, window_start};
use crate::store::{Store, now_ms, rfc3339};
use crate::stripe::{self, TypeFilter};
use crate::webhook::Ingest;

#[derive(Args, Debug, Clone)]
pub struct ReconcileArgs {
    /// How far back to look, e.g. 72h, 7d (at most 30d: Stripe lists events for 30 days).
    #[arg(long, value_parser = reconcile_window, default_value = "72h", conflicts_with = "from")]
    pub since: Duration,
    /// Events created at or after this time (RFC 3339, e.g. 2026-11-29T14:00:00Z), instead of --since.
    #[arg(long, value_name = "RFC3339")]
    pub from: Option<String>,
    /// Only this event type; repeat for up to 20, or give one pattern with * (e.g. invoice.*).
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// List the events that would be added; store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Every event in the window, not only those Stripe could not deliver (delivery_success=false).
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub config: Config,
}

pub async fn run(args: ReconcileArgs) -> anyhow::Result<()> {
    let config = Arc::new(args.config);
    let types = TypeFilter::parse(&args.types).map_err(|m| anyhow::anyhow!("--type: {m}"))?;
    let since = window_start(args.since, args.from.as_deref(), now_ms() / 1000).map_err(anyhow::Error::msg)?;
    let key = config
        .stripe_secret_key
        .as_deref()
        .filter(|k| !k.trim().is_empty())
        .context(
            "STRIPE_SECRET_KEY is not set: `deferral reconcile` reads Stripe's events list (GET /v1/events) \
             and needs a secret key, or a restricted key that can read events",
        )?;
    let request = Request {
        since,
        types,
        all: args.all,
        dry_run: args.dry_run,
    }
    .narrowed_to(&config);
    let store = Store::open_with(&config.database_url, config.db_timeout).await?;
    // The server's budget (`STRIPE_API_RATE`), and on PostgreSQL this process takes its share of it.
    let client = crate::handlers::stripe_client(&config, &store, key, stripe::Timeouts::default());
    // The webhook's ingest; without a server in this process no executor needs waking
    // (PostgreSQL's processes hear of the new executions through NOTIFY, SQLite's poll).
    let ingest = Ingest::start(store.clone(), config.clone(), ExecutorHandle::default());
    println!("{}", describe(&request, &config.stripe_api_base));

    let record = if request.dry_run {
        None
    } else {
        let owner = crate::executor::owner_id();
        let started = store.sweep_started(since, "command", &owner);
        Some(store.bounded("sweep record", started).await?)
    };
    let reconciler = Reconciler {
        client: &client,
        ingest: &ingest,
        store: &store,
        config: &config,
        record,
    };
    let mut progress = Progress::new(since);
    let outcome = reconciler.run(&request, || None, |t| progress.page(t)).await;
    progress.finish();
    let (tally, error) = match outcome {
        Ok(tally) => (tally, None),
        Err(stopped) => (stopped.tally, Some(stopped.error)),
    };
    // Its budget's share of the processes is counted no more (the count needs the store).
    drop(client);
    if let Some(id) = record {
        let message = error.as_ref().map(|e| e.to_string());
        let finished = store.sweep_finished(id, tally.counts(), message.as_deref());
        store.bounded("sweep record", finished).await?;
    }
    store.close().await;
    for m in &tally.missing {
        println!(
            "would add {} {} created {}",
            m.id,
            m.event_type,
            rfc3339(m.created * 1000)
        );
    }
    match error {
        None => {
            println!("{}", summary(&tally, request.dry_run));
            Ok(())
        }
        Some(e) => Err(anyhow::anyhow!(
            "{e}\nstopped after {}; {}",
            plural(tally.pages, "page"),
            if request.dry_run {
                "nothing was stored (dry run)".to_string()
            } else if tally.added == 0 {
                "nothing new was stored".to_string()
            } else {
                format!(
                    "the {} stored stay stored: run it again to go on",
                    plural(tally.added, "new execution")
                )
            }
        )),
    }
}

/// The first line: what is being listed, from where.
fn describe(request: &Request, base: &str) -> String {
    let which = if request.all {
        "all events"
    } else {
        "events Stripe could not deliver (delivery_success=false)"
    };
    let types = match &request.types {
        TypeFilter::All => "of every type".to_string(),
        TypeFilter::Exact(types) => format!("of type {}", types.join(", ")),
        TypeFilter::Pattern(pattern) => format!("of types {pattern}"),
    };
    let dry = if request.dry_run {
        " (dry run: nothing is stored)"
    } else {
        ""
    };
    format!(
        "reconcile: {which} {types}, created since {}, from {base}{dry}",
        rfc3339(request.since * 1000)
    )
}

fn summary(t: &Tally, dry_run: bool) -> String {
    let mut s = format!("{} read, {} seen, ", plural(t.pages, "page"), plural(t.seen, "event"));
    if dry_run {
        s.push_str(&format!("{} would be added; nothing stored (dry run)", t.added));
    } else {
        s.push_str(&format!(
            "{} ({} already stored)",
            plural(t.added, "new execution"),
            t.seen - t.added - t.ignored - t.unreadable
        ));
    }
    if t.accounts > 0 {
        s.push_str(&format!(
            "; listed the platform's events and those of {} (as each, with Stripe-Account)",
            plural(t.accounts, "connected account")
        ));
    }
    if t.ignored > 0 {
        s.push_str(&format!(", {} ignored (not in DEFERRAL_EVENT_TYPES)", t.ignored));
    }
    if t.unreadable > 0 {
        s.push_str(&format!(", {} unreadable (skipped, see the log)", t.unreadable));
    }
    s
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A bar on a terminal, plain lines otherwise. The bar measures how far back the listing has
/// come (Stripe lists newest first and tells no total): from now to the window's start.
/// `indicatif` draws it: redraw throttling, terminal width and clearing at the end are its job.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    since: i64,
    now: i64,
}

impl Progress {
    fn new(since: i64) -> Progress {
        let now = now_ms() / 1000;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new((now - since).max(1) as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {msg} ({elapsed})")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress { bar, since, now }
    }

    fn page(&mut self, t: &Tally) {
        let line = format!("page {}: {} seen, {} new", t.pages, t.seen, t.added);
        match &self.bar {
            Some(bar) => {
                let reached = t.reached.unwrap_or(self.now).max(self.since);
                bar.set_position((self.now - reached).max(0) as u64);
                bar.set_message(format!("{line}, back to {}", rfc3339(reached * 1000)));
            }
            None => println!("{line}"),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
