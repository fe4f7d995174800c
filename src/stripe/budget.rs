//! Deferral's share of the Stripe account's rate limits (`STRIPE_API_RATE`).
//!
//! Stripe limits each account per mode (100 requests/s live, 25/s in a sandbox) and per
//! endpoint (25/s by default; every route template such as `GET /v1/events/{id}` is one
//! endpoint), and the customer's own application spends the same limits. Every call passes
//! two limiters, its mode's and its endpoint's, shared by all workers of the process (the
//! client's clones share one `Budget`). A call that would wait briefly ([`HOLD`]) waits where
//! it is; a longer wait gives the execution back to the executor, which runs it again when the
//! budget has room (not counting the attempt), so the worker serves other executions meanwhile.
//!
//! Several processes on PostgreSQL split the budget by the number of live processes
//! ([`Budget::set_processes`], refreshed from the database), so the total holds.
//!
//! The limiters are `governor`'s (GCRA): well tested, lock-free, and they answer "not
//! until …", which is what a wait needs. What is ours is only what governor does not do:
//! spacing out the executions given back (so they do not all return at once), and slowing
//! down after Stripe answers 429.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The longest a call waits for budget while keeping its worker; past it the execution is
/// given back and runs again when its turn comes. Short: while a burst is being given back,
/// every claimed execution of it holds a worker this long, and work behind it waits.
pub const HOLD: Duration = Duration::from_millis(50);
/// How long the later calls of an attempt wait in place: giving the execution back then would
/// spend its earlier calls again when it runs next.
pub const HOLD_LATER_CALLS: Duration = Duration::from_secs(5);
/// Outside an executor's attempt (a command), nothing can take the execution back: wait.
const HOLD_OUTSIDE_ATTEMPTS: Duration = Duration::from_secs(60);

tokio::task_local! {
    /// The Stripe calls the current attempt has made so far.
    static ATTEMPT_CALLS: std::cell::Cell<u32>;
}

/// Runs one attempt's work: its first Stripe call may give the execution back when the budget
/// has no room ([`HOLD`]); its later ones wait in place ([`HOLD_LATER_CALLS`]).
pub async fn attempt<F: std::future::Future>(work: F) -> F::Output {
    ATTEMPT_CALLS.scope(std::cell::Cell::new(0), work).await
}

/// How long the next call may wait in place, counting it as made.
pub(super) fn hold_for_next_call() -> Duration {
    ATTEMPT_CALLS
        .try_with(|calls| {
            let before = calls.get();
            calls.set(before.saturating_add(1));
            if before == 0 { HOLD } else { HOLD_LATER_CALLS }
        })
        .unwrap_or(HOLD_OUTSIDE_ATTEMPTS)
}

/// After a 429 without `Retry-After` (Stripe documents none), the bucket pauses this long:
/// Stripe's limits are per second.
const PAUSE_AFTER_429: Duration = Duration::from_secs(1);
/// The rate is halved at each 429, down to this fraction of the budget at most…
const SLOWEST: f64 = 0.125;
/// …and doubled back after this long without one.
const RECOVER_AFTER: Duration = Duration::from_secs(10);

/// Requests per second: per mode, and per endpoint (each route template).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub live: f64,
    pub test: f64,
    pub endpoint: f64,
}

impl Default for Rates {
    /// Half of Stripe's default limits (100/s live, 25/s sandbox, 25/s per endpoint): the other
    /// half is the application's.
    fn default() -> Self {
        Rates {
            live: 50.0,
            test: 12.0,
            endpoint: 12.0,
        }
    }
}

impl std::str::FromStr for Rates {
    type Err = String;

    /// `live=50,test=12,endpoint=12`; a name left out keeps its default.
    fn from_str(s: &str) -> Result<Rates, String> {
        let mut rates = Rates::default();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}`: expected name=requests per second (live, test or endpoint)"))?;
            let value: f64 = match value.trim().parse() {
                Ok(v) if v > 0.0 && v <= 100_000.0 => v,
                _ => {
                    return Err(format!(
                        "`{pair}`: the rate must be a number above 0 (requests per second)"
                    ));
                }
            };
            match name.trim() {
                "live" => rates.live = value,
                "test" => rates.test = value,
                "endpoint" => rates.endpoint = value,
                other => return Err(format!("`{other}`: unknown rate (live, test or endpoint)")),
            }
        }
        Ok(rates)
    }
}

impl Rates {
    fn scaled(&self, by: f64) -> Rates {
        Rates {
            live: self.live * by,
            test: self.test * by,
            endpoint: self.endpoint * by,
        }
    }

    fn of(&self, mode: Mode) -> f64 {
        match mode {
            Mode::Live => self.live,
            Mode::Test => self.test,
        }
    }
}

/// Stripe keeps separate limits for live mode and sandboxes; a key belongs to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Live,
    Test,
}

impl Mode {
    /// `sk_live_…`/`rk_live_…` are live keys; anything else gets the (smaller) sandbox budget.
    pub fn of_key(key: &str) -> Mode {
        if key.starts_with("sk_live_") || key.starts_with("rk_live_") {
            Mode::Live
        } else {
            Mode::Test
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Test => "test",
        }
    }
}

/// A mode's whole budget (`None`) or one endpoint of it.
type Bucket = (Mode, Option<String>);

/// The limiters for one effective rate; rebuilt when the rate changes.
struct Limiters {
    live: DefaultDirectRateLimiter,
    test: DefaultDirectRateLimiter,
    endpoints: DefaultKeyedRateLimiter<(Mode, String)>,
    rates: Rates,
}

fn quota(per_second: f64) -> Quota {
    // No burst: calls evenly spaced never exceed a per-second window, whatever its phase.
    let period = Duration::from_secs_f64(1.0 / per_second).max(Duration::from_micros(1));
    Quota::with_period(period)
        .expect("a period above zero")
        .allow_burst(NonZeroU32::MIN)
}

impl Limiters {
    fn new(rates: Rates) -> Limiters {
        Limiters {
            live: RateLimiter::direct(quota(rates.live)),
            test: RateLimiter::direct(quota(rates.test)),
            endpoints: RateLimiter::keyed(quota(rates.endpoint)),
            rates,
        }
    }
}

struct State {
    processes: u32,
    /// 1, or less after 429s.
    factor: f64,
    last_change: Instant,
    /// Buckets Stripe answered 429 for, paused until then.
    paused: HashMap<Bucket, Instant>,
    /// Per bucket, the time after the last execution given back: the next one returns after it.
    queue: HashMap<Bucket, Instant>,
}

pub struct Budget {
    configured: Rates,
    limiters: RwLock<Arc<Limiters>>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("configured", &self.configured)
            .field("effective", &self.effective())
            .finish()
    }
}

impl Budget {
    pub fn new(configured: Rates) -> Arc<Budget> {
        let budget = Budget {
            configured,
            limiters: RwLock::new(Arc::new(Limiters::new(configured))),
            state: Mutex::new(State {
                processes: 1,
                factor: 1.0,
                last_change: Instant::now(),
                paused: HashMap::new(),
                queue: HashMap::new(),
            }),
        };
        budget.publish(configured);
        Arc::new(budget)
    }

    /// This process's rates now: the configured ones split between processes, slowed after 429s.
    pub fn effective(&self) -> Rates {
        self.limiters.read().expect("budget limiters").rates
    }

    /// The number of Deferral processes sharing the account's budget (at least 1).
    pub fn set_processes(&self, n: u32) {
        let mut state = self.state.lock().expect("budget state");
        let n = n.max(1);
        if state.processes != n {
            tracing::info!(processes = n, "Stripe budget split between {n} processes");
            state.processes = n;
            self.rebuild(&state);
        }
    }

    fn rebuild(&self, state: &State) {
        let rates = self.configured.scaled(state.factor / state.processes as f64);
        *self.limiters.write().expect("budget limiters") = Arc::new(Limiters::new(rates));
        self.publish(rates);
    }

    fn publish(&self, rates: Rates) {
        for (limit, value) in [("live", rates.live), ("test", rates.test), ("endpoint", rates.endpoint)] {
            metrics::gauge!("deferral_stripe_budget_per_second", "limit" => limit).set(value);
        }
    }

    /// Waits for room for one call to `route` (a route template such as `GET /v1/events/{id}`).
    /// `Ok(waited)` once the call may go; `Err(wait)` when the wait would be longer than
    /// [`HOLD`]: the execution should run again after `wait` (its place in the queue is kept).
    pub async fn acquire(&self, mode: Mode, route: &str) -> Result<Duration, Duration> {
        self.acquire_within(mode, route, HOLD).await
    }

    /// [`Budget::acquire`], waiting in place up to `hold`.
    pub async fn acquire_within(&self, mode: Mode, route: &str, hold: Duration) -> Result<Duration, Duration> {
        let started = Instant::now();
        // The endpoint's call first, then the mode's: once the first is taken only the second
        // is waited for (taking both again would spend the first twice).
        for whole in [false, true] {
            loop {
                let wait = self.paused_for(mode, route).or_else(|| self.take(mode, route, whole));
                match wait {
                    None => break,
                    Some(wait) if started.elapsed() + wait <= hold => tokio::time::sleep(wait).await,
                    Some(wait) => return Err(self.queue(mode, route, wait)),
                }
            }
        }
        Ok(started.elapsed())
    }

    /// Stripe answered 429 to a call on `route`: pause what it names (`Stripe-Rate-Limited-Reason`:
    /// the endpoint for `endpoint-*` and `resource-specific`, else the whole mode) for
    /// `Retry-After` or a second, halve the rate, and return when the execution should run again.
    pub fn rate_limited(
        &self,
        mode: Mode,
        route: &str,
        reason: Option<&str>,
        retry_after: Option<Duration>,
    ) -> Duration {
        let pause = retry_after.unwrap_or(PAUSE_AFTER_429).min(Duration::from_secs(60));
        let bucket = match reason {
            Some(r) if r.starts_with("endpoint") || r == "resource-specific" => (mode, Some(route.to_string())),
            _ => (mode, None),
        };
        {
            let mut state = self.state.lock().expect("budget state");
            let until = Instant::now() + pause;
            let paused = state.paused.entry(bucket).or_insert(until);
            *paused = (*paused).max(until);
            state.factor = (state.factor / 2.0).max(SLOWEST);
            state.last_change = Instant::now();
            self.rebuild(&state);
        }
        tracing::warn!(
            route,
            reason,
            pause_ms = pause.as_millis() as u64,
            "Stripe answered 429; slowing down"
        );
        self.queue(mode, route, pause)
    }

    /// How long the call must wait for a pause after a 429, if one is on.
    fn paused_for(&self, mode: Mode, route: &str) -> Option<Duration> {
        let mut state = self.state.lock().expect("budget state");
        let now = Instant::now();
        if state.factor < 1.0 && now.duration_since(state.last_change) >= RECOVER_AFTER {
            state.factor = (state.factor * 2.0).min(1.0);
            state.last_change = now;
            self.rebuild(&state);
        }
        if state.paused.is_empty() {
            return None;
        }
        state.paused.retain(|_, until| *until > now);
        [(mode, None), (mode, Some(route.to_string()))]
            .iter()
            .filter_map(|b| state.paused.get(b))
            .max()
            .map(|until| until.duration_since(now))
    }

    /// Takes a call from the endpoint's limiter (or the mode's, `whole`), or says how long
    /// until there is room. A call given back after taking the endpoint's is lost to the
    /// budget: it is only under-spent.
    fn take(&self, mode: Mode, route: &str, whole: bool) -> Option<Duration> {
        let limiters = self.limiters.read().expect("budget limiters").clone();
        // Each limiter's own clock: quanta clocks calibrate separately, and the instants of two
        // of them differ by seconds on a machine up for an hour.
        let (taken, now) = match (whole, mode) {
            (false, _) => (
                limiters.endpoints.check_key(&(mode, route.to_string())),
                limiters.endpoints.clock().now(),
            ),
            (true, Mode::Live) => (limiters.live.check(), limiters.live.clock().now()),
            (true, Mode::Test) => (limiters.test.check(), limiters.test.clock().now()),
        };
        taken.err().map(|not_until| not_until.wait_time_from(now))
    }

    /// The wait for an execution given back: at least `wait`, and after every execution given
    /// back before it, one call's interval apart, so they return at the rate the budget allows
    /// instead of all at once.
    fn queue(&self, mode: Mode, route: &str, wait: Duration) -> Duration {
        let rates = self.effective();
        let mut state = self.state.lock().expect("budget state");
        let now = Instant::now();
        let endpoint: Bucket = (mode, Some(route.to_string()));
        let whole: Bucket = (mode, None);
        let at = [
            Some(now + wait),
            state.queue.get(&endpoint).copied(),
            state.queue.get(&whole).copied(),
        ]
        .into_iter()
        .flatten()
        .max()
        .expect("now + wait is there");
        let interval = |per_second: f64| Duration::from_secs_f64(1.0 / per_second);
        state.queue.insert(endpoint, at + interval(rates.endpoint));
        state.queue.insert(whole, at + interval(rates.of(mode)));
        // Entries in the past reserve nothing; drop them so the map stays small.
        state.queue.retain(|_, t| *t > now);
        at - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_defaults_for_what_is_left_out() {
        assert_eq!("".parse::<Rates>().unwrap(), Rates::default());
        let r: Rates = "live=80, endpoint=20.5".parse().unwrap();
        assert_eq!((r.live, r.test, r.endpoint), (80.0, 12.0, 20.5));
        for bad in ["live", "live=0", "live=-1", "live=fast", "global=10", "test=1e9"] {
            assert!(bad.parse::<Rates>().is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_tell_the_mode() {
        assert_eq!(Mode::of_key("sk_live_abc"), Mode::Live);
        assert_eq!(Mode::of_key("rk_live_abc"), Mode::Live);
        assert_eq!(Mode::of_key("sk_test_abc"), Mode::Test);
        assert_eq!(Mode::of_key("whatever"), Mode::Test);
    }

    const EVENTS: &str = "GET /v1/events/{id}";

    #[tokio::test]
    async fn calls_are_spaced_at_the_endpoint_rate_and_long_waits_are_queued() {
        let budget = Budget::new("test=1000,endpoint=20".parse().unwrap());
        let started = Instant::now();
        let calls = (0..12).map(|_| budget.acquire(Mode::Test, EVENTS));
        let (went, mut given_back): (Vec<_>, Vec<_>) = futures::future::join_all(calls)
            .await
            .into_iter()
            .partition(Result::is_ok);
        let mut given_back: Vec<Duration> = given_back.drain(..).map(Result::unwrap_err).collect();
        given_back.sort();
        // 20/s: the first goes at once and the next 50 ms later (the wait is within HOLD); the
        // rest are given back, 50 ms apart from each other.
        assert!(
            started.elapsed() <= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        assert!((1..=3).contains(&went.len()), "{} went, {given_back:?}", went.len());
        for pair in given_back.windows(2) {
            let gap = pair[1].as_secs_f64() - pair[0].as_secs_f64();
            assert!((0.03..0.07).contains(&gap), "{given_back:?}");
        }
        // Another endpoint has its own budget.
        assert!(budget.acquire(Mode::Test, "GET /v1/charges/{id}").await.is_ok());
    }

    #[tokio::test]
    async fn an_attempts_later_calls_wait_in_place() {
        let budget = Budget::new(Rates::default());
        attempt(async {
            for _ in 0..3 {
                // 12/s per mode: each event's second call waits ~83 ms, in place.
                assert!(
                    budget
                        .acquire_within(Mode::Test, EVENTS, hold_for_next_call())
                        .await
                        .is_ok()
                );
                let charge = budget.acquire_within(Mode::Test, "GET /v1/charges/{id}", hold_for_next_call());
                assert!(charge.await.is_ok());
            }
        })
        .await;
    }

    #[tokio::test]
    async fn processes_split_the_budget() {
        let budget = Budget::new("live=50,endpoint=10".parse().unwrap());
        budget.set_processes(2);
        assert_eq!(budget.effective(), "live=25,test=6,endpoint=5".parse().unwrap());
        budget.set_processes(0);
        assert_eq!(budget.effective().endpoint, 10.0);
    }

    #[tokio::test]
    async fn a_429_pauses_what_stripe_names_and_slows_down() {
        let budget = Budget::new("test=100,endpoint=100".parse().unwrap());
        let wait = budget.rate_limited(Mode::Test, EVENTS, Some("endpoint-rate"), None);
        assert!(wait >= Duration::from_millis(990), "{wait:?}");
        assert_eq!(budget.effective().endpoint, 50.0);
        // That endpoint waits out the pause; another one goes on.
        assert!(budget.acquire(Mode::Test, EVENTS).await.is_err());
        assert!(budget.acquire(Mode::Test, "GET /v1/charges/{id}").await.is_ok());
        // A global limit pauses every endpoint of the mode, and Retry-After is respected.
        let wait = budget.rate_limited(Mode::Test, EVENTS, Some("global-rate"), Some(Duration::from_secs(3)));
        assert!(wait >= Duration::from_millis(2990), "{wait:?}");
        assert!(budget.acquire(Mode::Test, "GET /v1/charges/{id}").await.is_err());
        assert!(budget.acquire(Mode::Live, "GET /v1/charges/{id}").await.is_ok());
    }
}
