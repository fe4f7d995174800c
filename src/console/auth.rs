//! Console login: the password check (constant time, rate limited) and session tokens.
//!
//! A token is `<expires>.<nonce>.<mac>`, signed with a key derived from the password, so every
//! Deferral process sharing a database and a password accepts it (no session table). Logging
//! out revokes the token in this process and clears the cookie.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use app::api::Session;
use app::error::ConsoleError;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Failed logins allowed per window before every login is refused until the window moves on.
pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

pub struct Auth {
    password_digest: [u8; 32],
    key: [u8; 32],
    /// Revoked nonces, with their expiry (unix seconds) so the map can be trimmed.
    revoked: Mutex<HashMap<String, i64>>,
    failures: Mutex<VecDeque<Instant>>,
}

impl Auth {
    pub fn new(password: &str) -> Self {
        let mut mac = HmacSha256::new_from_slice(password.as_bytes()).expect("HMAC takes any key length");
        mac.update(b"deferral console sessions v1");
        Auth {
            password_digest: Sha256::digest(password.as_bytes()).into(),
            key: mac.finalize().into_bytes().into(),
            revoked: Mutex::new(HashMap::new()),
            failures: Mutex::new(VecDeque::new()),
        }
    }

    /// A random password for when none is configured: 24 letters and digits.
    pub fn generate_password() -> String {
        rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(24)
            .map(char::from)
            .collect()
    }

    pub fn login(&self, password: &str, now: i64) -> Result<Session, ConsoleError> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let window_start = Instant::now().checked_sub(FAILURE_WINDOW);
        while failures.front().is_some_and(|t| Some(*t) < window_start) {
            failures.pop_front();
        }
        if failures.len() >= MAX_FAILURES {
            let oldest = *failures.front().expect("non-empty");
            let wait = FAILURE_WINDOW.saturating_sub(oldest.elapsed()).as_secs().max(1);
            return Err(ConsoleError::TooManyAttempts { retry_after_secs: wait });
        }
        // Comparing digests keeps the comparison constant-time and independent of length.
        let given: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        if !bool::from(given.ct_eq(&self.password_digest)) {
            failures.push_back(Instant::now());
            tracing::warn!(recent_failures = failures.len(), "console login failed");
            return Err(ConsoleError::WrongPassword);
        }
        drop(failures);
        let expires = now + SESSION_TTL.as_secs() as i64;
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let payload = format!("{expires}.{nonce}");
        Ok(Session {
            token: format!("{payload}.{}", self.sign(&payload)),
            max_age_secs: SESSION_TTL.as_secs(),
        })
    }

    pub fn valid(&self, token: &str, now: i64) -> bool {
        let Some((payload, mac)) = token.rsplit_once('.') else {
            return false;
        };
        let Some((expires, nonce)) = payload.split_once('.') else {
            return false;
        };
        let Ok(expires) = expires.parse::<i64>() else {
            return false;
        };
        let signed = bool::from(self.sign(payload).as_bytes().ct_eq(mac.as_bytes()));
        signed
            && expires > now
            && !self
                .revoked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(nonce)
    }

    pub fn logout(&self, token: &str, now: i64) {
        if !self.valid(token, now) {
            return;
        }
        let mut parts = token.split('.');
        if let (Some(expires), Some(nonce)) = (parts.next(), parts.next()) {
            let mut revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
            revoked.retain(|_, exp| *exp > now);
            revoked.insert(nonce.to_string(), expires.parse().unwrap_or(now));
        }
    }

    fn sign(&self, payload: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_signed_expire_and_can_be_revoked() {
        let auth = Auth::new("secret");
        let s = auth.login("secret", 1_000).unwrap();
        assert!(auth.valid(&s.token, 1_000));
        assert!(!auth.valid(&s.token, 1_000 + SESSION_TTL.as_secs() as i64));
        assert!(!Auth::new("other").valid(&s.token, 1_000), "another password's key");
        let mut forged = s.token.clone();
        forged.replace_range(0..1, "9");
        assert!(!auth.valid(&forged, 1_000));
        assert!(!auth.valid("garbage", 1_000));
        auth.logout(&s.token, 1_000);
        assert!(!auth.valid(&s.token, 1_000));
    }

    #[test]
    fn failed_logins_are_limited() {
        let auth = Auth::new("secret");
        for _ in 0..MAX_FAILURES {
            assert_eq!(auth.login("nope", 0).unwrap_err(), ConsoleError::WrongPassword);
        }
        assert!(matches!(
            auth.login("secret", 0),
            Err(ConsoleError::TooManyAttempts { .. })
        ));
    }
}
