//! Back-off between attempts, with Defer's names and defaults.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// `DEFERRAL_MAX_ATTEMPTS`. Not what the executor decides by: each execution's own
    /// `max_attempts`, stored at ingest, is (the rescuer reads it too).
    pub max_attempts: u32,
    pub initial_interval: Duration,
    pub multiplier: f64,
    pub randomization_factor: f64,
    pub max_interval: Duration,
}

impl RetryPolicy {
    pub fn from_config(c: &crate::config::Config) -> Self {
        RetryPolicy {
            max_attempts: c.max_attempts,
            initial_interval: c.retry_initial_interval,
            multiplier: c.retry_multiplier,
            randomization_factor: c.retry_randomization,
            max_interval: c.retry_max_interval,
        }
    }

    /// The wait after attempt number `attempt` (1 = the first try) failed:
    /// min(max_interval, initial × multiplier^(attempt−1)) × a random factor in [1−r, 1+r].
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let exponent = attempt.saturating_sub(1).min(1000) as i32;
        let base = self.initial_interval.as_secs_f64() * self.multiplier.powi(exponent);
        let capped = base.min(self.max_interval.as_secs_f64());
        let r = self.randomization_factor;
        let factor = if r > 0.0 {
            rng.gen_range((1.0 - r)..=(1.0 + r))
        } else {
            1.0
        };
        Duration::from_secs_f64((capped * factor).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn policy(r: f64) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 8,
            initial_interval: Duration::from_secs(30),
            multiplier: 1.5,
            randomization_factor: r,
            max_interval: Duration::from_secs(600),
        }
    }

    #[test]
    fn without_jitter_the_schedule_is_exact_and_capped() {
        let p = policy(0.0);
        let mut rng = StdRng::seed_from_u64(1);
        let secs: Vec<f64> = (1..=10).map(|a| p.delay(a, &mut rng).as_secs_f64()).collect();
        let expected = [
            30.0, 45.0, 67.5, 101.25, 151.875, 227.8125, 341.71875, 512.578125, 600.0, 600.0,
        ];
        for (got, want) in secs.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{secs:?}");
        }
    }

    #[test]
    fn jitter_stays_within_the_factor_and_is_reproducible_with_a_seed() {
        let p = policy(0.5);
        let mut a = StdRng::seed_from_u64(7);
        let mut b = StdRng::seed_from_u64(7);
        for attempt in 1..=8 {
            let d = p.delay(attempt, &mut a);
            assert_eq!(d, p.delay(attempt, &mut b));
            let base = (30.0 * 1.5f64.powi(attempt as i32 - 1)).min(600.0);
            let s = d.as_secs_f64();
            assert!(
                s >= base * 0.5 - 1e-9 && s <= base * 1.5 + 1e-9,
                "attempt {attempt}: {s} vs {base}"
            );
        }
    }
}
