//! The console's server side: implements `app::api::ConsoleApi` over the store and the
//! executor. The Leptos app reaches it through context (see `http::router`).

mod auth;
mod bulk;
mod list;

use app::api::{Console, ConsoleApi, Session};
use app::error::ConsoleError;
use app::model::{Action, Cursor, Execution, ExecutionDetail, ExecutionFilter, ExecutionPage, MAX_PAGE_SIZE};
use app::view::{BulkOutcome, BulkPreview, Facets, ListView, StateCount};

use crate::http::AppState;
use crate::store::{StoreError, now_ms, parse_time_bound};

pub use auth::Auth;

/// Counts per status stop here: a big table never pays for a full count on each page.
pub const COUNT_CAP: i64 = 1000;

pub struct ConsoleService {
    state: AppState,
    auth: Auth,
}

impl ConsoleService {
    /// Uses the configured password, or generates one and prints it to the terminal.
    pub fn new(state: AppState) -> Self {
        app::server::register();
        let password = match &state.config.console_password {
            Some(p) if !p.is_empty() => p.clone(),
            _ => {
                let p = Auth::generate_password();
                // Printed once, to the terminal only: logs are collected, kept and shared.
                eprintln!("\nConsole password for this run (DEFERRAL_CONSOLE_PASSWORD is not set): {p}\n");
                tracing::warn!(
                    "DEFERRAL_CONSOLE_PASSWORD is not set; generated a console password for this run and printed it to the terminal"
                );
                p
            }
        };
        ConsoleService {
            auth: Auth::new(&password),
            state,
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

/// What the store would reject deep down (bad time bounds, page sizes) as a clear input error.
fn check_filter(f: &ExecutionFilter) -> Result<(), ConsoleError> {
    for (name, bound) in [("from", &f.from), ("to", &f.to)] {
        if let Some(v) = bound
            && parse_time_bound(v).is_none()
        {
            return Err(ConsoleError::Invalid(format!(
                "invalid `{name}` time `{v}` (RFC 3339, or YYYY-MM-DDTHH:MM in UTC)"
            )));
        }
    }
    if f.limit.is_some_and(|n| n == 0 || n > MAX_PAGE_SIZE) {
        return Err(ConsoleError::Invalid(format!(
            "limit must be between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    Ok(())
}

#[async_trait::async_trait]
impl ConsoleApi for ConsoleService {
    fn session_valid(&self, token: &str) -> bool {
        self.auth.valid(token, now_ms() / 1000)
    }

    fn login(&self, password: &str) -> Result<Session, ConsoleError> {
        self.auth.login(password, now_ms() / 1000)
    }

    fn logout(&self, token: &str) {
        self.auth.logout(token, now_ms() / 1000)
    }

    async fn list(&self, filter: &ExecutionFilter) -> Result<ListView, ConsoleError> {
        check_filter(filter)?;
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
        Ok(ListView { page, counts })
    }

    async fn facets(&self) -> Result<Facets, ConsoleError> {
        let (types, api_versions) = self.state.store.facets().await.map_err(store_error)?;
        Ok(Facets { types, api_versions })
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
        Ok(ExecutionDetail {
            execution,
            attempts,
            payload: pretty(&payload),
            reruns,
        })
    }

    async fn act(&self, id: &str, action: Action) -> Result<Execution, ConsoleError> {
        let row = crate::api::perform(&self.state, id, action).await.map_err(api_error)?;
        let mut views = self
            .state
            .store
            .views(std::slice::from_ref(&row))
            .await
            .map_err(store_error)?;
        Ok(views.remove(0))
    }

    async fn bulk_preview(&self, filter: &ExecutionFilter, action: Action) -> Result<BulkPreview, ConsoleError> {
        check_filter(filter)?;
        bulk::preview(&self.state.store, filter, action).await
    }

    async fn bulk_apply(&self, filter: &ExecutionFilter, action: Action) -> Result<BulkOutcome, ConsoleError> {
        check_filter(filter)?;
        bulk::apply(&self.state, filter, action).await
    }
}

/// The REST API's refusal, as the console shows it (one code path for actions).
fn api_error(e: crate::http::ApiError) -> ConsoleError {
    use axum::http::StatusCode;
    match e.status {
        StatusCode::NOT_FOUND => ConsoleError::NotFound(e.message),
        StatusCode::CONFLICT => ConsoleError::Refused(e.message),
        StatusCode::SERVICE_UNAVAILABLE => ConsoleError::Unavailable(e.message),
        _ => ConsoleError::Internal(e.message),
    }
}

/// The payload indented for reading; kept as delivered when it is not JSON.
fn pretty(payload: &str) -> String {
    serde_json::from_str::<serde_json::Value>(payload)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| payload.to_string())
}
