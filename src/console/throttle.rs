//! Login attempts, throttled per client with `governor`'s keyed buckets (GCRA).
//!
//! Every client has its own buckets, so an outsider's guesses never lock out an operator at
//! another address: there is deliberately no global limit. Two buckets give delays that grow
//! with persistence: a client may try a few times at once, then once per 12 s, and after a
//! longer run once per 3 minutes. IPv6 clients are keyed by their /64, the block one host
//! usually holds, so rotating addresses inside it buys nothing.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// Attempts at once, then one per `SHORT_PERIOD`.
pub const SHORT_BURST: u32 = 10;
pub const SHORT_PERIOD: Duration = Duration::from_secs(3);
/// Attempts over a longer run, then one per `LONG_PERIOD`.
pub const LONG_BURST: u32 = 100;
pub const LONG_PERIOD: Duration = Duration::from_secs(36);

pub struct LoginThrottle {
    short: DefaultKeyedRateLimiter<IpAddr>,
    long: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

fn quota(period: Duration, burst: u32) -> Quota {
    Quota::with_period(period)
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::new(burst).expect("a non-zero burst"))
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
    /// A throttle, with a janitor that forgets clients whose buckets are full again (so memory
    /// follows recent clients only). The janitor stops when the throttle is dropped.
    pub fn start() -> Arc<Self> {
        let throttle = Arc::new(LoginThrottle {
            short: DefaultKeyedRateLimiter::keyed(quota(SHORT_PERIOD, SHORT_BURST)),
            long: DefaultKeyedRateLimiter::keyed(quota(LONG_PERIOD, LONG_BURST)),
            clock: DefaultClock::default(),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak: Weak<Self> = Arc::downgrade(&throttle);
            runtime.spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    every.tick().await;
                    let Some(throttle) = weak.upgrade() else { return };
                    for limiter in [&throttle.short, &throttle.long] {
                        limiter.retain_recent();
                        limiter.shrink_to_fit();
                    }
                }
            });
        }
        throttle
    }

    /// Counts an attempt from `client`; `Err(wait)` when it must wait first (the attempt is
    /// then not made, and the password not even compared).
    pub fn attempt(&self, client: IpAddr) -> Result<(), Duration> {
        let key = client_key(client);
        for limiter in [&self.short, &self.long] {
            limiter
                .check_key(&key)
                .map_err(|not_until| not_until.wait_time_from(self.clock.now()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_client_has_its_own_budget() {
        let throttle = LoginThrottle::start();
        let attacker: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..SHORT_BURST {
            throttle.attempt(attacker).unwrap();
        }
        let wait = throttle.attempt(attacker).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= SHORT_PERIOD, "{wait:?}");
        throttle.attempt("198.51.100.1".parse().unwrap()).unwrap();
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
