//! Console login: the password check (constant time, throttled per client) and sessions.
//!
//! Sessions live in the database (`console_sessions`), so logging out and expiry hold in every
//! process and across restarts. A token is `<session id>.<mac>`: the MAC, keyed with the
//! server secret (`DEFERRAL_SESSION_SECRET`, or one generated once and kept in the database),
//! turns a forged token away before any query. Each session records a keyed fingerprint of the
//! password that opened it; a session whose password is no longer the configured one is over,
//! so changing a password ends every session opened with the old one.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use app::api::{Session, SignedIn};
use app::error::ConsoleError;
use domain::view::Role;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use super::store_error;
use super::throttle::LoginThrottle;
use crate::store::Store;
use crate::store::console::SessionRow;

type HmacSha256 = Hmac<Sha256>;

/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// The passwords, as digests (compared in constant time, whatever their length).
pub struct Passwords {
    pub operator: String,
    pub viewer: Option<String>,
    /// Configured (as opposed to generated for this process alone): other processes have the
    /// same, so sessions opened with an earlier one can be ended for all of them.
    pub configured: bool,
}

/// Keys derived from the server secret once it is known.
struct Keys {
    mac_key: [u8; 32],
    operator: String,
    viewer: Option<String>,
}

pub struct Auth {
    store: Store,
    operator_digest: [u8; 32],
    viewer_digest: Option<[u8; 32]>,
    passwords: Passwords,
    configured_secret: Option<String>,
    keys: OnceCell<Keys>,
    throttle: Arc<LoginThrottle>,
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
        mac.update(b"\0");
    }
    mac.finalize().into_bytes().into()
}

fn digest(password: &str) -> [u8; 32] {
    Sha256::digest(password.as_bytes()).into()
}

impl Auth {
    pub fn new(store: Store, passwords: Passwords, configured_secret: Option<String>) -> Self {
        Auth {
            store,
            operator_digest: digest(&passwords.operator),
            viewer_digest: passwords.viewer.as_deref().map(digest),
            passwords,
            configured_secret,
            keys: OnceCell::new(),
            throttle: LoginThrottle::start(),
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

    /// The keys, from the configured secret or the one in the database (created on first use).
    /// The first time, sessions opened with another password are ended (a password changed).
    async fn keys(&self, now_ms: i64) -> Result<&Keys, ConsoleError> {
        self.keys
            .get_or_try_init(|| async {
                let secret = match &self.configured_secret {
                    Some(secret) => secret.clone(),
                    None => {
                        let candidate = hex::encode(rand::random::<[u8; 32]>());
                        self.store
                            .console_secret(&candidate, now_ms)
                            .await
                            .map_err(store_error)?
                    }
                };
                let mac_key = mac(secret.as_bytes(), &[b"deferral console sessions v2"]);
                let fingerprint = |role: Role, password: &str| {
                    hex::encode(mac(
                        &mac_key,
                        &[b"credential", role.as_str().as_bytes(), password.as_bytes()],
                    ))
                };
                let keys = Keys {
                    operator: fingerprint(Role::Operator, &self.passwords.operator),
                    viewer: self.passwords.viewer.as_deref().map(|p| fingerprint(Role::Viewer, p)),
                    mac_key,
                };
                if self.passwords.configured {
                    let ended = self
                        .store
                        .end_console_sessions_except(&keys.operator, keys.viewer.as_deref(), now_ms)
                        .await
                        .map_err(store_error)?;
                    if ended > 0 {
                        tracing::info!(
                            sessions = ended,
                            "console password changed: ended the sessions opened with the old one"
                        );
                    }
                }
                Ok(keys)
            })
            .await
    }

    fn role_of(&self, password: &str) -> Option<Role> {
        let given = digest(password);
        // Both comparisons always run: the time taken says nothing about which one matched.
        let operator = given.ct_eq(&self.operator_digest);
        let viewer = self.viewer_digest.map(|d| given.ct_eq(&d));
        if bool::from(operator) {
            Some(Role::Operator)
        } else if viewer.is_some_and(bool::from) {
            Some(Role::Viewer)
        } else {
            None
        }
    }

    pub async fn login(&self, password: &str, client: IpAddr, now_ms: i64) -> Result<Session, ConsoleError> {
        if let Err(wait) = self.throttle.may_attempt(client) {
            tracing::warn!(%client, "console login refused: too many attempts from this client");
            return Err(ConsoleError::TooManyAttempts {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        let Some(role) = self.role_of(password) else {
            self.throttle.failed(client);
            tracing::warn!(%client, "console login failed");
            return Err(ConsoleError::WrongPassword);
        };
        let keys = self.keys(now_ms).await?;
        let id = hex::encode(rand::random::<[u8; 16]>());
        let credential = match role {
            Role::Operator => keys.operator.clone(),
            Role::Viewer => keys.viewer.clone().unwrap_or_default(),
        };
        let ttl_ms = SESSION_TTL.as_millis() as i64;
        self.store
            .create_console_session(&SessionRow {
                id: id.clone(),
                role: role.as_str().into(),
                credential,
                address: client.to_string(),
                created_at: now_ms,
                expires_at: now_ms + ttl_ms,
                ended_at: None,
            })
            .await
            .map_err(store_error)?;
        tracing::info!(%client, role = role.as_str(), session = %id, "console login");
        let token = format!("{id}.{}", hex::encode(mac(&keys.mac_key, &[b"session", id.as_bytes()])));
        Ok(Session {
            token,
            max_age_secs: SESSION_TTL.as_secs(),
        })
    }

    /// The session id in a token whose MAC holds; `None` for anything else (no query made).
    fn session_id<'t>(&self, keys: &Keys, token: &'t str) -> Option<&'t str> {
        let (id, given) = token.split_once('.')?;
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let expected = hex::encode(mac(&keys.mac_key, &[b"session", id.as_bytes()]));
        bool::from(expected.as_bytes().ct_eq(given.as_bytes())).then_some(id)
    }

    pub async fn session(&self, token: &str, now_ms: i64) -> Result<Option<SignedIn>, ConsoleError> {
        let keys = self.keys(now_ms).await?;
        let Some(id) = self.session_id(keys, token) else {
            return Ok(None);
        };
        let Some(row) = self.store.console_session(id).await.map_err(store_error)? else {
            return Ok(None);
        };
        let (role, current) = match row.role.as_str() {
            "operator" => (Role::Operator, Some(&keys.operator)),
            "viewer" => (Role::Viewer, keys.viewer.as_ref()),
            _ => return Ok(None),
        };
        let same_password = current.is_some_and(|c| bool::from(c.as_bytes().ct_eq(row.credential.as_bytes())));
        let open = row.ended_at.is_none() && row.expires_at > now_ms;
        Ok((open && same_password).then_some(SignedIn {
            session_id: row.id,
            role,
        }))
    }

    /// Ends the token's session for every process.
    pub async fn logout(&self, token: &str, now_ms: i64) -> Result<(), ConsoleError> {
        let keys = self.keys(now_ms).await?;
        if let Some(id) = self.session_id(keys, token) {
            self.store.end_console_session(id, now_ms).await.map_err(store_error)?;
            tracing::info!(session = %id, "console logout");
        }
        Ok(())
    }
}
