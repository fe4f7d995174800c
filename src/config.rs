//! All configuration, as one `clap` struct: flags with environment fallbacks.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;

/// Durations are written as `30s`, `10m`, `30d`.
fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write durations like 30s, 10m, 30d)"))
}

fn nonzero_duration(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        d if d.is_zero() => Err("must be greater than zero".into()),
        d => Ok(d),
    }
}

/// A comma-separated list; blanks are dropped.
fn list(s: &str) -> Result<Vec<String>, String> {
    Ok(s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect())
}

/// A comma-separated setting (secrets, event types), read as one value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommaList(pub Vec<String>);

impl std::ops::Deref for CommaList {
    type Target = Vec<String>;
    fn deref(&self) -> &Vec<String> {
        &self.0
    }
}

fn comma_list(s: &str) -> Result<CommaList, String> {
    list(s).map(CommaList)
}

/// How far back a reconciliation looks: more than zero, at most the 30 days Stripe lists events for.
pub fn reconcile_window(s: &str) -> Result<Duration, String> {
    let d = nonzero_duration(s)?;
    let max = crate::store::sweeps::STRIPE_LISTS_EVENTS_FOR;
    if d > max {
        return Err(format!(
            "`{s}` reaches further back than Stripe keeps events (30 days): at most 30d"
        ));
    }
    Ok(d)
}

fn session_secret(s: &str) -> Result<String, String> {
    if s.len() < 32 {
        return Err("must be at least 32 characters (e.g. `openssl rand -hex 32`)".into());
    }
    Ok(s.to_string())
}

fn multiplier(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(m) if m >= 1.0 && m.is_finite() => Ok(m),
        _ => Err("must be a number of at least 1".into()),
    }
}

fn randomization(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("must be a number between 0 and 1".into()),
    }
}

fn default_workers() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    4 * cores as u32
}

#[derive(Args, Debug, Clone)]
pub struct Config {
    /// `sqlite://PATH` (created and migrated on start) or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://deferral.db")]
    pub database_url: String,

    /// Address to listen on.
    #[arg(long, env = "LEPTOS_SITE_ADDR", default_value = "127.0.0.1:3000")]
    pub site_addr: SocketAddr,

    /// Folder holding the console's compiled assets (`pkg/`), as built by cargo-leptos.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: String,

    /// One or more `whsec_…` secrets, comma-separated (several while rotating).
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", value_parser = comma_list, default_value = "", hide_env_values = true)]
    pub stripe_webhook_secret: CommaList,

    /// Oldest signature timestamp accepted.
    #[arg(long, env = "STRIPE_WEBHOOK_TOLERANCE", value_parser = nonzero_duration, default_value = "300s")]
    pub stripe_webhook_tolerance: Duration,

    /// Key used to re-fetch events (`GET /v1/events/{id}`); without it the verified payload is used.
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,

    /// Stripe API base URL.
    #[arg(long, env = "STRIPE_API_BASE", default_value = "https://api.stripe.com")]
    pub stripe_api_base: String,

    /// The API version sent on every Stripe request (`Stripe-Version`): objects fetched come back
    /// in it; events keep the version they were created in.
    #[arg(long, env = "STRIPE_API_VERSION", value_parser = crate::stripe::version::parse, default_value = crate::stripe::API_VERSION)]
    pub stripe_api_version: String,

    /// Deferral's Stripe budget, requests per second: per mode (`live`, `test`) and per endpoint
    /// (`endpoint`, each route template); shared by all processes on one database. Default: half
    /// of Stripe's limits, the other half left to the application.
    #[arg(long, env = "STRIPE_API_RATE", value_parser = stripe_api_rate, default_value = "live=50,test=12,endpoint=12")]
    pub stripe_api_rate: crate::stripe::Rates,

    /// Console password; when unset a random one is generated and printed at start.
    #[arg(long, env = "DEFERRAL_CONSOLE_PASSWORD", hide_env_values = true)]
    pub console_password: Option<String>,

    /// A second console password that can browse but not act (unset: no such login).
    #[arg(long, env = "DEFERRAL_CONSOLE_VIEWER_PASSWORD", hide_env_values = true)]
    pub console_viewer_password: Option<String>,

    /// Key console session tokens are signed with (at least 32 characters); when unset one is
    /// generated once and kept in the database.
    #[arg(long, env = "DEFERRAL_SESSION_SECRET", value_parser = session_secret, hide_env_values = true)]
    pub session_secret: Option<String>,

    /// Session cookies without `Secure`, for plain-HTTP development (`deferral dev` sets it).
    #[arg(long, env = "DEFERRAL_INSECURE_COOKIES", value_parser = clap::builder::BoolishValueParser::new())]
    pub insecure_cookies: bool,

    /// Reverse proxies (addresses or CIDR networks, comma-separated) whose `X-Forwarded-For`
    /// names the client; from anyone else the header is ignored.
    #[arg(long, env = "DEFERRAL_TRUSTED_PROXIES", value_parser = TrustedProxies::parse, default_value = "")]
    pub trusted_proxies: TrustedProxies,

    /// Bearer token for `/api/v1/*`; when unset the API answers 401.
    #[arg(long, env = "DEFERRAL_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,

    /// Allow-list of event types, comma-separated; empty: all.
    #[arg(long, env = "DEFERRAL_EVENT_TYPES", value_parser = comma_list, default_value = "")]
    pub event_types: CommaList,

    /// Run each execution this long after the event's `created`.
    #[arg(long, env = "DEFERRAL_PROCESS_DELAY", value_parser = duration, default_value = "0s")]
    pub process_delay: Duration,

    /// An execution not started this long after it was first due becomes `discarded` (unset: never).
    #[arg(long, env = "DEFERRAL_DISCARD_AFTER", value_parser = nonzero_duration)]
    pub discard_after: Option<Duration>,

    /// Tries per execution, the first included.
    #[arg(long, env = "DEFERRAL_MAX_ATTEMPTS", default_value = "8", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_attempts: u32,

    /// First back-off.
    #[arg(long, env = "DEFERRAL_RETRY_INITIAL_INTERVAL", value_parser = duration, default_value = "30s")]
    pub retry_initial_interval: Duration,

    /// Back-off growth per attempt.
    #[arg(long, env = "DEFERRAL_RETRY_MULTIPLIER", value_parser = multiplier, default_value = "1.5")]
    pub retry_multiplier: f64,

    /// Jitter factor r: each delay is multiplied by a random factor in [1-r, 1+r].
    #[arg(long, env = "DEFERRAL_RETRY_RANDOMIZATION", value_parser = randomization, default_value = "0.5")]
    pub retry_randomization: f64,

    /// Longest back-off.
    #[arg(long, env = "DEFERRAL_RETRY_MAX_INTERVAL", value_parser = duration, default_value = "10m")]
    pub retry_max_interval: Duration,

    /// Per-attempt timeout.
    #[arg(long, env = "DEFERRAL_MAX_DURATION", value_parser = nonzero_duration, default_value = "5m")]
    pub max_duration: Duration,

    /// Attempts running at once in this process (default: 4 × cores).
    #[arg(long, env = "DEFERRAL_WORKERS", default_value_t = default_workers(), value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub workers: u32,

    /// Per-event-type limits on attempts running at once, e.g. `invoice.paid=2,charge.failed=1`.
    #[arg(long, env = "DEFERRAL_TYPE_CONCURRENCY", value_parser = type_limits, default_value = "")]
    pub type_concurrency: TypeLimits,

    /// Lease on a running execution, renewed by heartbeat.
    #[arg(long, env = "DEFERRAL_LEASE", value_parser = nonzero_duration, default_value = "30s")]
    pub lease: Duration,

    /// How often idle workers look for due executions when no wake-up arrives.
    #[arg(long, env = "DEFERRAL_POLL_INTERVAL", value_parser = nonzero_duration, default_value = "1s")]
    pub poll_interval: Duration,

    /// How long finished executions are kept.
    #[arg(long, env = "DEFERRAL_RETENTION", value_parser = nonzero_duration, default_value = "30d")]
    pub retention: Duration,

    /// How often the server lists the events Stripe could not deliver (`GET /v1/events`) and
    /// stores the missing ones; needs `STRIPE_SECRET_KEY`. `0` turns the sweep off.
    #[arg(long, env = "DEFERRAL_RECONCILE_INTERVAL", value_parser = duration, default_value = "15m")]
    pub reconcile_interval: Duration,

    /// How far back each sweep looks (at most 30d, as long as Stripe lists events).
    #[arg(long, env = "DEFERRAL_RECONCILE_WINDOW", value_parser = reconcile_window, default_value = "72h")]
    pub reconcile_window: Duration,
    /// Longest wait on one database call (connection, statement, lock) of the executor, the
    /// webhook's writer and the maintenance services; past it the database counts as unavailable.
    #[arg(long, env = "DEFERRAL_DB_TIMEOUT", value_parser = nonzero_duration, default_value = "10s")]
    pub db_timeout: Duration,

    /// On shutdown, how long running attempts may take to finish before they are released.
    #[arg(long, env = "DEFERRAL_SHUTDOWN_GRACE", value_parser = duration, default_value = "10s")]
    pub shutdown_grace: Duration,

    /// Slack-compatible incoming-webhook URLs told about final failures, comma-separated (unset: none).
    #[arg(long, env = "DEFERRAL_ALERT_WEBHOOK_URL", value_parser = webhook_urls, default_value = "", hide_env_values = true)]
    pub alert_webhook_url: CommaList,

    /// At most one failure message per event type per window; failures meanwhile are digested.
    #[arg(long, env = "DEFERRAL_ALERT_DIGEST_WINDOW", value_parser = nonzero_duration, default_value = "1m")]
    pub alert_digest_window: Duration,

    /// First wait before posting an alert again when its receiver failed (doubles, up to 10m).
    #[arg(long, env = "DEFERRAL_ALERT_RETRY_INTERVAL", value_parser = nonzero_duration, default_value = "5s")]
    pub alert_retry_interval: Duration,

    /// Longest wait for a receiver to take one alert; a receiver that takes longer counts as
    /// failed (retried later) and holds up no other receiver.
    #[arg(long, env = "DEFERRAL_ALERT_TIMEOUT", value_parser = nonzero_duration, default_value = "10s")]
    pub alert_timeout: Duration,

    /// Base of links in alerts (default: http://LEPTOS_SITE_ADDR).
    #[arg(long, env = "DEFERRAL_PUBLIC_URL", value_parser = public_url)]
    pub public_url: Option<String>,

    /// Bearer token for `/metrics`; when unset `/metrics` is open.
    #[arg(long, env = "DEFERRAL_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    #[command(flatten)]
    pub limits: Limits,
}

/// What one client may hold of the server: the bounds that keep slow, idle or many clients
/// from piling up (see `http::serve` and `http::limits`).
#[derive(Args, Debug, Clone)]
pub struct Limits {
    /// Longest wait for a request's headers, and for the next request on a kept-alive connection.
    #[arg(long, env = "DEFERRAL_HEADER_TIMEOUT", value_parser = nonzero_duration, default_value = "10s")]
    pub header_timeout: Duration,

    /// Longest pause while a request body arrives.
    #[arg(long, env = "DEFERRAL_BODY_TIMEOUT", value_parser = nonzero_duration, default_value = "10s")]
    pub body_timeout: Duration,

    /// Longest time from a request's headers to its answer, on every route (408 after it).
    #[arg(long, env = "DEFERRAL_REQUEST_TIMEOUT", value_parser = nonzero_duration, default_value = "30s")]
    pub request_timeout: Duration,

    /// Open connections at once; further ones wait in the listen backlog until one closes.
    #[arg(long, env = "DEFERRAL_MAX_CONNECTIONS", default_value = "1024", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Requests in progress at once; further ones are answered 503 at once.
    #[arg(long, env = "DEFERRAL_MAX_REQUESTS", default_value = "512", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_requests: u32,
}

/// An `http(s)://` URL.
fn http_url(s: &str) -> Result<String, String> {
    match reqwest::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(s.to_string()),
        _ => Err(format!("`{}` is not an http(s) URL", domain::alerts::receiver_label(s))),
    }
}

fn webhook_urls(s: &str) -> Result<CommaList, String> {
    list(s)?
        .iter()
        .map(|u| http_url(u))
        .collect::<Result<_, _>>()
        .map(CommaList)
}

fn public_url(s: &str) -> Result<String, String> {
    http_url(s.trim()).map(|u| u.trim_end_matches('/').to_string())
}

fn stripe_api_rate(s: &str) -> Result<crate::stripe::Rates, String> {
    s.parse()
}

/// `type=limit` pairs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypeLimits(pub Vec<(String, u32)>);

fn type_limits(s: &str) -> Result<TypeLimits, String> {
    list(s)?
        .into_iter()
        .map(|pair| {
            let (ty, n) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}`: expected type=limit"))?;
            let n: u32 = n
                .trim()
                .parse()
                .map_err(|_| format!("`{pair}`: the limit must be a positive integer"))?;
            if n == 0 {
                return Err(format!("`{pair}`: the limit must be at least 1"));
            }
            Ok((ty.trim().to_string(), n))
        })
        .collect::<Result<_, _>>()
        .map(TypeLimits)
}

/// Shortest bearer token accepted: a short one can be guessed over the network.
pub const MIN_TOKEN_LEN: usize = 16;

impl Config {
    /// Checks what `clap` cannot check value by value; `start` refuses a configuration that fails.
    pub fn validate(&self) -> Result<(), String> {
        for (name, token) in [
            ("DEFERRAL_API_TOKEN", &self.api_token),
            ("DEFERRAL_METRICS_TOKEN", &self.metrics_token),
        ] {
            if let Some(token) = token
                && token.chars().count() < MIN_TOKEN_LEN
            {
                return Err(format!(
                    "{name} is shorter than {MIN_TOKEN_LEN} characters: choose a long random one (e.g. `openssl rand -hex 32`), or unset it"
                ));
            }
        }
        Ok(())
    }

    /// The configuration with every default, for tests and tools that start from it.
    pub fn defaults() -> Self {
        use clap::{FromArgMatches, Parser};
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            config: Config,
        }
        // Parse from no arguments and no environment: just the defaults.
        let matches = <Only as clap::CommandFactory>::command()
            .mut_args(|a| a.env(None::<&str>))
            .get_matches_from(["deferral"]);
        Only::from_arg_matches(&matches).expect("defaults parse").config
    }
}

/// Addresses and networks (`10.0.0.0/8`, `::1`) whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    /// A comma-separated list of addresses or CIDR networks; empty: trust no proxy.
    pub fn parse(s: &str) -> Result<Self, String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{p}` is not an IP address or network (e.g. 10.0.0.1, 10.0.0.0/8, ::1)"))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.0.iter().any(|net| net.contains(&addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_lists_and_limits() {
        assert_eq!(duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(duration("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert!(nonzero_duration("0s").is_err());
        assert_eq!(list(" whsec_a, ,whsec_b").unwrap(), vec!["whsec_a", "whsec_b"]);
        assert_eq!(
            type_limits("a=1, b=2").unwrap().0,
            vec![("a".into(), 1), ("b".into(), 2)]
        );
        assert!(type_limits("a=0").is_err());
        assert!(type_limits("a").is_err());
        assert!(multiplier("0.5").is_err());
        assert!(randomization("1.5").is_err());
        assert_eq!(webhook_urls("https://a.example/x, http://b:1/y").unwrap().len(), 2);
        assert!(webhook_urls("hooks.slack.com/x").is_err());
        assert_eq!(
            public_url("https://deferral.example/").unwrap(),
            "https://deferral.example"
        );
    }

    #[test]
    fn defaults_match_the_design() {
        let c = Config::defaults();
        assert_eq!(c.database_url, "sqlite://deferral.db");
        assert_eq!(c.max_attempts, 8);
        assert_eq!(c.retry_initial_interval, Duration::from_secs(30));
        assert_eq!(c.retry_max_interval, Duration::from_secs(600));
        assert_eq!(c.stripe_webhook_tolerance, Duration::from_secs(300));
        assert!(c.stripe_webhook_secret.is_empty());
        assert_eq!(c.reconcile_interval, Duration::from_secs(15 * 60));
        assert_eq!(c.reconcile_window, Duration::from_secs(72 * 3600));
        assert!(!c.insecure_cookies, "cookies are Secure unless asked");
        assert!(c.trusted_proxies.0.is_empty(), "no proxy is trusted unless named");
        assert!(session_secret("short").is_err());
        assert_eq!(c.stripe_api_rate, crate::stripe::Rates::default());
        assert_eq!(c.limits.header_timeout, Duration::from_secs(10));
        assert_eq!(c.limits.request_timeout, Duration::from_secs(30));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn the_reconcile_window_stays_within_stripes_30_days() {
        assert_eq!(reconcile_window("30d").unwrap(), Duration::from_secs(30 * 86_400));
        let e = reconcile_window("31d").unwrap_err();
        assert!(e.contains("30 days"), "{e}");
        assert!(reconcile_window("0s").is_err());
    }

    #[test]
    fn empty_or_short_tokens_are_refused() {
        let mut c = Config::defaults();
        for short in ["", "secret", "fifteen-chars-x"] {
            c.api_token = Some(short.into());
            assert!(c.validate().unwrap_err().contains("DEFERRAL_API_TOKEN"), "{short}");
        }
        c.api_token = Some("sixteen-chars-xx".into());
        assert!(c.validate().is_ok());
        c.metrics_token = Some("short".into());
        assert!(c.validate().unwrap_err().contains("DEFERRAL_METRICS_TOKEN"));
    }
}
