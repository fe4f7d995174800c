//! `GET {STRIPE_API_BASE}/v1/{collection}/{id}` and lists with the secret key, in the configured
//! API version (`Stripe-Version`), for Connect events on behalf of the connected account
//! (`Stripe-Account`), bounded in time, inside Deferral's share of the account's rate limits
//! (every request goes through [`Client::send`]).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::budget::{Budget, Mode, Rates};
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
    /// Which of the account's limits the key spends.
    mode: Mode,
    /// Shared by every clone, so every worker's calls count against one budget.
    budget: Arc<Budget>,
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
            mode: Mode::of_key(key),
            budget: Budget::new(Rates::default()),
        }
    }

    /// Spends `budget` (shared with whoever else holds it) instead of a default one of its own.
    pub fn with_budget(mut self, budget: Arc<Budget>) -> Client {
        self.budget = budget;
        self
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
        self.get(&format!("GET /v1/{collection}/{{id}}"), &path, &[], account)
            .await
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
        let mut page = self
            .get(&format!("GET /v1/{collection}"), collection, &query, account)
            .await?;
        match page.get_mut("data").map(Value::take) {
            Some(Value::Array(data)) => Ok(data),
            _ => Err(StripeError::Unreadable(format!("{collection}: a list without `data`"))),
        }
    }

    /// `GET /v1/{path}?{query}` as the account, in the configured version; `route` is its
    /// route template (the unit of Stripe's per-endpoint limits).
    async fn get(
        &self,
        route: &str,
        path: &str,
        query: &[(&str, &str)],
        account: Option<&str>,
    ) -> Result<Value, StripeError> {
        let mut request = self
            .http
            .get(format!("{}/v1/{path}", self.base))
            .query(query)
            .bearer_auth(&self.key)
            .header("Stripe-Version", &self.version);
        if let Some(account) = account {
            request = request.header("Stripe-Account", account);
        }
        let body = self.send(route, request).await?;
        serde_json::from_str(&body).map_err(|e| StripeError::Unreadable(format!("{path}: {e}")))
    }

    /// Sends one request to `route` (its route template, e.g. `GET /v1/events/{id}`: Stripe's
    /// unit for per-endpoint limits) inside the budget, and returns the body of a 2xx answer.
    /// No room for long: `OverBudget`, and the execution waits without holding a worker. A 429:
    /// the limiter slows down, and the execution waits too. Every call is counted in
    /// `deferral_stripe_calls_total` by route and status.
    pub async fn send(&self, route: &str, request: reqwest::RequestBuilder) -> Result<String, StripeError> {
        let mode = self.mode.as_str();
        let hold = super::budget::hold_for_next_call();
        let waited = match self.budget.acquire_within(self.mode, route, hold).await {
            Ok(waited) => waited,
            Err(wait) => {
                metrics::counter!("deferral_stripe_budget_postponed_total", "endpoint" => route.to_string())
                    .increment(1);
                metrics::histogram!("deferral_stripe_budget_wait_seconds", "mode" => mode).record(wait.as_secs_f64());
                return Err(StripeError::OverBudget {
                    endpoint: route.to_string(),
                    wait,
                    stripe_said: None,
                });
            }
        };
        if !waited.is_zero() {
            metrics::histogram!("deferral_stripe_budget_wait_seconds", "mode" => mode).record(waited.as_secs_f64());
        }
        let calls = |status: String| {
            metrics::counter!("deferral_stripe_calls_total", "endpoint" => route.to_string(), "status" => status)
                .increment(1)
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                calls(if e.is_timeout() { "timeout" } else { "error" }.into());
                return Err(self.network(e));
            }
        };
        let status = response.status().as_u16();
        calls(status.to_string());
        let headers = response.headers().clone();
        let body = response.text().await.map_err(|e| self.network(e))?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let error = StripeError::from_response(status, &headers, &body);
        let reason = headers
            .get("stripe-rate-limited-reason")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        if error.is_rate_limit(reason) {
            let retry_after = match &error {
                StripeError::Api { retry_after, .. } => *retry_after,
                _ => None,
            };
            let wait = self.budget.rate_limited(self.mode, route, reason, retry_after);
            metrics::histogram!("deferral_stripe_budget_wait_seconds", "mode" => mode).record(wait.as_secs_f64());
            let said = match reason {
                Some(reason) => format!("{error} ({reason})"),
                None => error.to_string(),
            };
            return Err(StripeError::OverBudget {
                endpoint: route.to_string(),
                wait,
                stripe_said: Some(said),
            });
        }
        Err(error)
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
