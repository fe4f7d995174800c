//! `GET {STRIPE_API_BASE}/v1/{collection}/{id}` and lists with the secret key, in the configured
//! API version (`Stripe-Version`), for Connect events on behalf of the connected account
//! (`Stripe-Account`), bounded in time.

use std::time::Duration;

use serde_json::Value;

use super::{Event, StripeError};

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// The whole request, body included.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            total: Duration::from_secs(30),
        }
    }
}

#[derive(Clone)]
pub struct Client {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) key: String,
    /// `Stripe-Version` on every request: objects come back in it (events keep their own).
    pub(super) version: String,
    timeouts: Timeouts,
}

impl std::fmt::Debug for Client {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// `version` must be a valid header value (`config::api_version` checks it).
    pub fn new(base: &str, key: &str, version: &str, timeouts: Timeouts) -> Client {
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.total)
            .user_agent(concat!("deferral/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a TLS backend is compiled in");
        Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
            version: version.to_string(),
            timeouts,
        }
    }

    /// The API version objects are fetched in.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The event as Stripe has it now (`GET /v1/events/{id}`).
    pub async fn event(&self, id: &str, account: Option<&str>) -> Result<Event, StripeError> {
        let value = self.retrieve("events", id, account).await?;
        serde_json::from_value(value).map_err(|e| StripeError::Unreadable(format!("the event {id}: {e}")))
    }

    /// One object by id, e.g. `retrieve("subscriptions", "sub_…", None)`.
    pub async fn retrieve(&self, collection: &str, id: &str, account: Option<&str>) -> Result<Value, StripeError> {
        // Ids come from signed payloads, but a path built from them must stay one path segment.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(StripeError::Api {
                status: 400,
                error_type: None,
                code: Some("invalid_id".into()),
                message: format!("`{id}` is not a Stripe id"),
                should_retry: Some(false),
                retry_after: None,
            });
        }
        let path = format!("{collection}/{id}");
        self.get(&path, &[], account).await
    }

    /// The first page (up to 100) of a list, e.g. `list("invoice_payments", &[("invoice", "in_…")], None)`.
    /// The filters the handlers use select a handful of objects, so one page holds them all.
    pub async fn list(
        &self,
        collection: &str,
        filters: &[(&str, &str)],
        account: Option<&str>,
    ) -> Result<Vec<Value>, StripeError> {
        let mut query = filters.to_vec();
        query.push(("limit", "100"));
        let mut page = self.get(collection, &query, account).await?;
        match page.get_mut("data").map(Value::take) {
            Some(Value::Array(data)) => Ok(data),
            _ => Err(StripeError::Unreadable(format!("{collection}: a list without `data`"))),
        }
    }

    /// `GET /v1/{path}?{query}` as the account, in the configured version.
    async fn get(&self, path: &str, query: &[(&str, &str)], account: Option<&str>) -> Result<Value, StripeError> {
        let mut request = self
            .http
            .get(format!("{}/v1/{path}", self.base))
            .query(query)
            .bearer_auth(&self.key)
            .header("Stripe-Version", &self.version);
        if let Some(account) = account {
            request = request.header("Stripe-Account", account);
        }
        let response = request.send().await.map_err(|e| self.network(e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.map_err(|e| self.network(e))?;
        if !(200..300).contains(&status) {
            return Err(StripeError::from_response(status, &headers, &body));
        }
        serde_json::from_str(&body).map_err(|e| StripeError::Unreadable(format!("{path}: {e}")))
    }

    pub(super) fn network(&self, e: reqwest::Error) -> StripeError {
        if e.is_timeout() {
            StripeError::Timeout(self.timeouts.total)
        } else {
            // The chain says why (refused, DNS, TLS); the top level alone rarely does.
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message = format!("{message}: {s}");
                source = s.source();
            }
            StripeError::Connection(message)
        }
    }
}
