//! What the console needs from the server, declared here and implemented in `src/console/`.
//! The server puts a [`Console`] into Leptos context; server functions take it from there.

use std::net::IpAddr;
use std::sync::Arc;

use http::request::Parts;

use crate::alerts::Alerts;
use crate::error::ConsoleError;
use crate::event_types::{EventTypes, Pause};
use crate::model::{Action, Cursor, Execution, ExecutionFilter};
use crate::records::{ObjectTimeline, RecordFilter, RecordPage};
use crate::view::{AuditPage, BulkOutcome, BulkPreview, ExecutionDetail, Facets, ListView, Role};

/// A signed-in session, as the cookie carries it.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub max_age_secs: u64,
}

/// A valid session: which one (its id, shown in the audit log) and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub session_id: String,
    pub role: Role,
}

/// Who asks for an action, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub session: SignedIn,
    pub address: IpAddr,
}

#[async_trait::async_trait]
pub trait ConsoleApi: Send + Sync + 'static {
    /// The session a cookie's token belongs to, if it is valid now (not ended, not expired,
    /// opened with the current password). Checked in the database, so every process agrees.
    async fn session(&self, token: &str) -> Result<Option<SignedIn>, ConsoleError>;
    /// Checks the password (constant time, throttled per client) and opens a session.
    async fn login(&self, password: &str, client: IpAddr) -> Result<Session, ConsoleError>;
    /// Ends a session in every process: its token no longer works anywhere.
    async fn logout(&self, token: &str);
    /// The client's address: the peer, or what a trusted proxy forwarded.
    fn client_address(&self, request: &Parts) -> IpAddr;
    /// Whether the session cookie gets `Secure` (everywhere but plain-HTTP development).
    fn secure_cookies(&self) -> bool;

    async fn list(&self, filter: &ExecutionFilter) -> Result<ListView, ConsoleError>;
    async fn facets(&self) -> Result<Facets, ConsoleError>;
    async fn detail(&self, id: &str) -> Result<ExecutionDetail, ConsoleError>;
    /// Applies an action and records it; answers the changed execution, or the new one for a re-run.
    async fn act(&self, actor: &Actor, id: &str, action: Action) -> Result<Execution, ConsoleError>;
    /// How many executions matching `filter` the action would apply to.
    async fn bulk_preview(&self, filter: &ExecutionFilter, action: Action) -> Result<BulkPreview, ConsoleError>;
    /// Applies the action to every matching execution (the filter's cursor bounds it to the
    /// preview) and records it.
    async fn bulk_apply(
        &self,
        actor: &Actor,
        filter: &ExecutionFilter,
        action: Action,
    ) -> Result<BulkOutcome, ConsoleError>;
    /// The audit log, newest first, older than `cursor` when given.
    async fn audit(&self, cursor: Option<Cursor>) -> Result<AuditPage, ConsoleError>;

    /// Every event type seen, with counts per state and pauses (issue 18).
    async fn event_types(&self) -> Result<EventTypes, ConsoleError>;
    /// Every pause, with how many executions each holds (cheap: for the list's banner).
    async fn pauses(&self) -> Result<Vec<Pause>, ConsoleError>;
    /// The pause holding each of `types` (at most [`crate::model::MAX_FILTER_TYPES`]), in order.
    async fn pauses_of(&self, types: &[String]) -> Result<Vec<Option<Pause>>, ConsoleError>;
    /// Pauses (`paused`) or resumes a type or prefix pattern, and records it (operators only).
    async fn set_paused(&self, actor: &Actor, pattern: &str, paused: bool) -> Result<Pause, ConsoleError>;
    /// Failure alerts composed, and their deliveries.
    async fn alerts(&self) -> Result<Alerts, ConsoleError>;
    /// One page of local records (customers, payment failures, …) matching `filter`.
    async fn records(&self, filter: &RecordFilter) -> Result<RecordPage, ConsoleError>;
    /// An object's executions in the order of its events, with its current record.
    async fn object(&self, id: &str) -> Result<ObjectTimeline, ConsoleError>;
    /// Executions per interval by outcome, the backlog and the failing types, over `window`.
    async fn overview(&self, window: crate::overview::Window) -> Result<crate::overview::Overview, ConsoleError>;
}

/// The implementation, as Leptos context.
#[derive(Clone)]
pub struct Console(pub Arc<dyn ConsoleApi>);

impl Console {
    pub fn new(api: impl ConsoleApi) -> Self {
        Console(Arc::new(api))
    }
}

impl std::ops::Deref for Console {
    type Target = dyn ConsoleApi;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}
