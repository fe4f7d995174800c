//! Login attempts, throttled per client with `governor`'s keyed buckets (GCRA).
//!
//! Only failed attempts spend a client's budget: operators behind one address (an office's NAT,
//! a test suite) log in as often as they like, while a guesser's wait grows in `STEPS`: ten
//! tries at once, then one per 3 s; after a hundred, one per 36 s; after a thousand (hours of
//! guessing at the earlier pace), one per 6 minutes. Each step is a bucket of its own, and a
//! failure spends a cell of each, so the slowest spent bucket sets the wait. A client whose budget
//! is spent is held: every attempt, the right password included, waits until it may try again,
//! and the password is not even compared meanwhile. Every client has its own buckets, so an
//! outsider's guesses never lock out an operator at another address: there is deliberately no
//! global limit. IPv6 clients are keyed by their /64, the block one host usually holds, so
//! rotating addresses inside it buys nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota};

/// The steps a guesser's wait grows by: after `burst` failures (counted from the first, less
/// what has come back since), one more per `period`.
pub struct Step {
    pub burst: u32,
    pub period: Duration,
}

pub const STEPS: [Step; 3] = [
    Step {
        burst: 10,
        period: Duration::from_secs(3),
    },
    Step {
        burst: 100,
        period: Duration::from_secs(36),
    },
    Step {
        burst: 1000,
        period: Duration::from_secs(360),
    },
];

type Bucket = DefaultKeyedRateLimiter<IpAddr, StateInformationMiddleware>;

pub struct LoginThrottle {
    /// A bucket per step, with the time one spent cell takes to come back.
    buckets: Vec<(Bucket, Duration)>,
    /// Clients whose budget is spent, and when they may try again. governor can only spend
    /// a cell, not look at a bucket, so the hold is kept beside it.
    held: Mutex<HashMap<IpAddr, Instant>>,
    clock: DefaultClock,
}

fn bucket(step: &Step) -> (Bucket, Duration) {
    let quota = Quota::with_period(step.period)
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::new(step.burst).expect("a non-zero burst"));
    (
        DefaultKeyedRateLimiter::<IpAddr>::keyed(quota).with_middleware::<StateInformationMiddleware>(),
        step.period,
    )
}

/// The key a client's attempts count under.
fn client_key(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    }
}

impl LoginThrottle {
    /// A throttle, with a janitor that forgets clients whose buckets are full again and whose
    /// hold has ended (so memory follows recent clients only). The janitor stops when the
    /// throttle is dropped.
    pub fn start() -> Arc<Self> {
        let throttle = Arc::new(LoginThrottle {
            buckets: STEPS.iter().map(bucket).collect(),
            held: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak: Weak<Self> = Arc::downgrade(&throttle);
            runtime.spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    every.tick().await;
                    let Some(throttle) = weak.upgrade() else { return };
                    for (limiter, _) in &throttle.buckets {
                        limiter.retain_recent();
                        limiter.shrink_to_fit();
                    }
                    let now = Instant::now();
                    throttle.holds().retain(|_, until| *until > now);
                }
            });
        }
        throttle
    }

    fn holds(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        // The map holds plain instants: a panic elsewhere cannot leave it inconsistent.
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `Err(wait)` while `client` is held: the attempt must not be made (nor the password
    /// compared). Costs `client` nothing.
    pub fn may_attempt(&self, client: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        match self.holds().get(&client_key(client)) {
            Some(until) if *until > now => Err(*until - now),
            _ => Ok(()),
        }
    }

    /// Spends one cell of `client`'s budget for a wrong password; when that was its last (or
    /// it had none), holds it until a cell comes back.
    pub fn failed(&self, client: IpAddr) {
        let key = client_key(client);
        let hold = self
            .buckets
            .iter()
            .filter_map(|(limiter, period)| match limiter.check_key(&key) {
                Ok(state) if state.remaining_burst_capacity() > 0 => None,
                // The last cell: the next one is back within a period at most.
                Ok(_) => Some(*period),
                Err(not_until) => Some(not_until.wait_time_from(self.clock.now())),
            })
            .max();
        if let Some(hold) = hold {
            let until = Instant::now() + hold;
            let mut holds = self.holds();
            let entry = holds.entry(key).or_insert(until);
            *entry = (*entry).max(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_client_has_its_own_budget() {
        let throttle = LoginThrottle::start();
        let attacker: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..STEPS[0].burst {
            throttle.may_attempt(attacker).unwrap();
            throttle.failed(attacker);
        }
        let wait = throttle.may_attempt(attacker).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= STEPS[0].period, "{wait:?}");
        throttle.may_attempt("198.51.100.1".parse().unwrap()).unwrap();
    }

    /// Each step in turn: one failure short of it the wait is still the previous step's; the
    /// failure that spends its last cell makes the wait longer, up to its period.
    #[tokio::test]
    async fn the_wait_grows_with_each_step() {
        let throttle = LoginThrottle::start();
        let guesser: IpAddr = "203.0.113.9".parse().unwrap();
        let (mut spent, mut previous) = (0, Duration::ZERO);
        for step in &STEPS {
            while spent < step.burst - 1 {
                throttle.failed(guesser);
                spent += 1;
            }
            let before = throttle.may_attempt(guesser).err().unwrap_or_default();
            assert!(before <= previous, "after {spent} failures: {before:?}");
            throttle.failed(guesser);
            spent += 1;
            let wait = throttle.may_attempt(guesser).unwrap_err();
            assert!(
                wait > previous && wait <= step.period,
                "after {spent} failures: {wait:?}, the step before held {previous:?}"
            );
            assert!(wait > step.period / 2, "this step's period sets the wait: {wait:?}");
            previous = wait;
        }
        // Past the last step the wait grows no further: one more try per period.
        for _ in 0..100 {
            throttle.failed(guesser);
        }
        let wait = throttle.may_attempt(guesser).unwrap_err();
        assert!(wait <= STEPS[2].period, "{wait:?}");
    }

    #[tokio::test]
    async fn only_failures_spend_the_budget() {
        let throttle = LoginThrottle::start();
        let office: IpAddr = "192.0.2.10".parse().unwrap();
        for _ in 0..(STEPS[0].burst * 5) {
            throttle.may_attempt(office).unwrap();
        }
        for _ in 0..(STEPS[0].burst - 1) {
            throttle.failed(office);
        }
        throttle.may_attempt(office).unwrap();
        throttle.failed(office);
        assert!(
            throttle.may_attempt(office).is_err(),
            "the last cell spent holds the client"
        );
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        assert_eq!(
            client_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            client_key("2001:db8:1:2:bbbb::9".parse().unwrap())
        );
        assert_ne!(
            client_key("2001:db8:1:2::1".parse().unwrap()),
            client_key("2001:db8:1:3::1".parse().unwrap())
        );
        assert_eq!(
            client_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }
}
