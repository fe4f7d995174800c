//! The console's server side: implements `app::api::ConsoleApi` over the store and the
//! executor. The Leptos app reaches it through context (see `http::router`).

mod auth;
pub mod client;
pub mod guard;
mod list;
mod overview;
mod records;
mod throttle;

use std::net::IpAddr;

use app::api::{Actor, Console, ConsoleApi, Session, SignedIn};
use app::error::ConsoleError;
use axum::http::request::Parts;
use domain::alerts::Alerts;
use domain::event_types::{EventTypes, Pause};
use domain::model::{Action, Cursor, Execution, ExecutionFilter, ExecutionPage, MAX_FILTER_TYPES};
use domain::view::ExecutionDetail;
use domain::view::{AuditPage, BulkOutcome, BulkPreview, Facets, ListView, StateCount, SweepView, TypeCount};

use crate::actions::{ActionError, By, audit};
use crate::config::Config;
use crate::http::state::AppState;
use crate::store::{StoreError, now_ms, rfc3339};

pub use auth::{Auth, Passwords};
pub use client::ClientAddr;

/// Counts per status stop here: a big table never pays for a full count on each page.
pub const COUNT_CAP: i64 = 1000;

pub struct ConsoleService {
    state: AppState,
    auth: Auth,
    overview: overview::Cache,
}

/// Console settings that cannot work together, refused at start.
pub fn check_config(config: &Config) -> anyhow::Result<()> {
    let operator = config.console_password.as_deref().filter(|p| !p.is_empty());
    let viewer = config.console_viewer_password.as_deref().filter(|p| !p.is_empty());
    if viewer.is_some() && viewer == operator {
        anyhow::bail!(
            "DEFERRAL_CONSOLE_VIEWER_PASSWORD equals DEFERRAL_CONSOLE_PASSWORD: a login could not tell a viewer from an operator"
        );
    }
    Ok(())
}

impl ConsoleService {
    /// Uses the configured password, or generates one and prints it once to the terminal
    /// (never into the structured log, which is often shipped elsewhere).
    pub fn new(state: AppState) -> Self {
        app::server::register();
        let configured = state.config.console_password.clone().filter(|p| !p.is_empty());
        let passwords = Passwords {
            configured: configured.is_some(),
            operator: configured.unwrap_or_else(|| {
                let p = Auth::generate_password();
                eprintln!("DEFERRAL_CONSOLE_PASSWORD is not set; the console password for this run is: {p}");
                p
            }),
            viewer: state.config.console_viewer_password.clone().filter(|p| !p.is_empty()),
        };
        ConsoleService {
            auth: Auth::new(state.store.clone(), passwords, state.config.session_secret.clone()),
            state,
            overview: overview::Cache::default(),
        }
    }

    pub fn into_context(self) -> Console {
        Console::new(self)
    }
}

/// Database trouble, as the console shows it (details go to the log).
fn store_error(e: StoreError) -> ConsoleError {
    tracing::error!(error = %e, "console: database error");
    if e.is_unavailable() {
        ConsoleError::Unavailable("the database is unavailable; try again".into())
    } else {
        ConsoleError::Internal("internal error; see the server log".into())
    }
}

/// An operator action's refusal as the console shows it: the same kinds (and messages) the
/// REST API answers with its codes.
impl From<ActionError> for ConsoleError {
    fn from(e: ActionError) -> Self {
        let message = e.to_string();
        match e {
            ActionError::Forbidden(_) => ConsoleError::Forbidden(message),
            ActionError::NotFound(_) | ActionError::NotPaused(_) => ConsoleError::NotFound(message),
            ActionError::Refused(_) => ConsoleError::Refused(message),
            ActionError::Invalid { .. } => ConsoleError::Invalid(message),
            ActionError::Unavailable => ConsoleError::Unavailable(message),
            ActionError::Internal => ConsoleError::Internal(message),
        }
    }
}

#[async_trait::async_trait]
impl ConsoleApi for ConsoleService {
    async fn session(&self, token: &str) -> Result<Option<SignedIn>, ConsoleError> {
        self.auth.session(token, now_ms()).await
    }

    async fn login(&self, password: &str, client: IpAddr) -> Result<Session, ConsoleError> {
        self.auth.login(password, client, now_ms()).await
    }

    async fn logout(&self, token: &str) {
        if let Err(e) = self.auth.logout(token, now_ms()).await {
            tracing::error!(error = %e, "console logout could not end the session");
        }
    }

    fn client_address(&self, request: &Parts) -> IpAddr {
        ClientAddr::of(request, &self.state.config.trusted_proxies).0
    }

    fn secure_cookies(&self) -> bool {
        !self.state.config.insecure_cookies
    }

    async fn list(&self, filter: &ExecutionFilter) -> Result<ListView, ConsoleError> {
        // Sent whole as JSON, not read from a URL: held to the filter's one rule here.
        filter.validate().map_err(ConsoleError::Invalid)?;
        let store = &self.state.store;
        let (rows, more) = list::page(store, filter).await.map_err(store_error)?;
        let data = store.views(&rows).await.map_err(store_error)?;
        let (first, last) = (rows.first().map(|r| r.seq), rows.last().map(|r| r.seq));
        // Rows come newest first. `more` means more in the direction the cursor points.
        let (newer, older) = match filter.cursor {
            None => (false, more),
            Some(Cursor::Before(_)) => (true, more),
            Some(Cursor::After(_)) => (more, true),
        };
        let page = ExecutionPage {
            data,
            next_cursor: older.then_some(last).flatten().map(|s| Cursor::Before(s).encode()),
            prev_cursor: newer.then_some(first).flatten().map(|s| Cursor::After(s).encode()),
        };
        let counts = store
            .count_states(filter, COUNT_CAP)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|(state, count)| StateCount {
                state,
                count,
                capped: count >= COUNT_CAP,
            })
            .collect();
        let last_sweep = store
            .recent_sweeps(None, 1)
            .await
            .map_err(store_error)?
            .pop()
            .map(|s| sweep_view(s, &self.state.config));
        Ok(ListView {
            page,
            counts,
            last_sweep,
            now_ms: Some(now_ms()),
        })
    }

    async fn facets(&self) -> Result<Facets, ConsoleError> {
        let store = &self.state.store;
        let api_versions = store.api_versions().await.map_err(store_error)?;
        // The types present are the ones counted: no second read of the type index.
        let type_counts: Vec<TypeCount> = store
            .event_type_totals(COUNT_CAP)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|(event_type, count)| TypeCount {
                event_type,
                count,
                capped: count >= COUNT_CAP,
            })
            .collect();
        Ok(Facets {
            types: type_counts.iter().map(|t| t.event_type.clone()).collect(),
            api_versions,
            type_counts,
        })
    }

    async fn detail(&self, id: &str) -> Result<ExecutionDetail, ConsoleError> {
        let store = &self.state.store;
        let row = store
            .execution(id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ConsoleError::NotFound(format!("no execution `{id}`")))?;
        let execution = store
            .views(std::slice::from_ref(&row))
            .await
            .map_err(store_error)?
            .remove(0);
        let attempts = store.attempts(id).await.map_err(store_error)?;
        let payload = store
            .event_payload(&row.event_id)
            .await
            .map_err(store_error)?
            .unwrap_or_default();
        let reruns = store.reruns(id).await.map_err(store_error)?;
        let waiting = store.waiting(&row).await.map_err(store_error)?;
        Ok(ExecutionDetail {
            execution,
            attempts,
            payload: pretty(&payload),
            reruns,
            waiting,
        })
    }

    async fn act(&self, actor: &Actor, id: &str, action: Action) -> Result<Execution, ConsoleError> {
        Ok(self.state.actions.act(&By::console(actor), id, action).await?)
    }

    async fn bulk_preview(&self, filter: &ExecutionFilter, action: Action) -> Result<BulkPreview, ConsoleError> {
        Ok(self.state.actions.bulk_preview(filter, action).await?)
    }

    async fn bulk_apply(
        &self,
        actor: &Actor,
        filter: &ExecutionFilter,
        action: Action,
    ) -> Result<BulkOutcome, ConsoleError> {
        Ok(self
            .state
            .actions
            .bulk_apply(&By::console(actor), filter, action)
            .await?)
    }

    async fn audit(&self, cursor: Option<Cursor>) -> Result<AuditPage, ConsoleError> {
        let before = audit::before(cursor).map_err(ConsoleError::Invalid)?;
        audit::page(&self.state.store, before, None).await.map_err(store_error)
    }

    async fn event_types(&self) -> Result<EventTypes, ConsoleError> {
        self.state.store.event_types().await.map_err(store_error)
    }

    async fn pauses(&self) -> Result<Vec<Pause>, ConsoleError> {
        self.state.store.pauses().await.map_err(store_error)
    }

    async fn pauses_of(&self, types: &[String]) -> Result<Vec<Option<Pause>>, ConsoleError> {
        if types.len() > MAX_FILTER_TYPES {
            return Err(ConsoleError::Invalid(format!(
                "too many event types (at most {MAX_FILTER_TYPES})"
            )));
        }
        let mut pauses = Vec::with_capacity(types.len());
        for t in types {
            pauses.push(self.state.store.pause_of(t).await.map_err(store_error)?);
        }
        Ok(pauses)
    }

    async fn set_paused(&self, actor: &Actor, pattern: &str, paused: bool) -> Result<Pause, ConsoleError> {
        Ok(self
            .state
            .actions
            .set_paused(&By::console(actor), pattern, paused)
            .await?)
    }

    async fn alerts(&self) -> Result<Alerts, ConsoleError> {
        let configured = !self.state.config.alert_webhook_url.is_empty();
        self.state
            .store
            .alerts(ALERTS_SHOWN, configured)
            .await
            .map_err(store_error)
    }

    async fn records(
        &self,
        filter: &domain::records::RecordFilter,
    ) -> Result<domain::records::RecordPage, ConsoleError> {
        records::page(&self.state.store, filter).await
    }

    async fn object(&self, id: &str) -> Result<domain::records::ObjectTimeline, ConsoleError> {
        records::timeline(&self.state.store, id).await
    }

    async fn overview(&self, window: domain::overview::Window) -> Result<domain::overview::Overview, ConsoleError> {
        self.overview.get(&self.state.store, window).await
    }
}

/// Alert messages the console lists.
const ALERTS_SHOWN: i64 = 100;

fn sweep_view(s: crate::store::SweepRow, config: &Config) -> SweepView {
    SweepView {
        interrupted: crate::reconcile::interrupted(&s, config, now_ms()),
        started_at: rfc3339(s.started_at),
        finished_at: s.finished_at.map(rfc3339),
        since: rfc3339(s.since * 1000),
        trigger: s.trigger,
        pages: s.pages,
        seen: s.seen,
        added: s.added,
        error: s.error,
    }
}

/// The payload indented for reading; kept as delivered when it is not JSON.
fn pretty(payload: &str) -> String {
    serde_json::from_str::<serde_json::Value>(payload)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| payload.to_string())
}
