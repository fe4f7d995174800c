//! What the console needs from the server, declared here and implemented in `src/console/`.
//! The server puts a [`Console`] into Leptos context; server functions take it from there.

use std::sync::Arc;

use crate::error::ConsoleError;
use crate::model::{Action, Execution, ExecutionDetail, ExecutionFilter};
use crate::records::{ObjectTimeline, RecordFilter, RecordPage};
use crate::view::{BulkOutcome, BulkPreview, Facets, ListView};

/// A signed-in session, as the cookie carries it.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub max_age_secs: u64,
}

#[async_trait::async_trait]
pub trait ConsoleApi: Send + Sync + 'static {
    /// Whether a session token (from the cookie) is valid now.
    fn session_valid(&self, token: &str) -> bool;
    /// Checks the password (constant time, rate limited) and opens a session.
    fn login(&self, password: &str) -> Result<Session, ConsoleError>;
    /// Ends a session so that its token no longer works.
    fn logout(&self, token: &str);

    async fn list(&self, filter: &ExecutionFilter) -> Result<ListView, ConsoleError>;
    async fn facets(&self) -> Result<Facets, ConsoleError>;
    async fn detail(&self, id: &str) -> Result<ExecutionDetail, ConsoleError>;
    /// Applies an action; answers the changed execution, or the new one for a re-run.
    async fn act(&self, id: &str, action: Action) -> Result<Execution, ConsoleError>;
    /// How many executions matching `filter` the action would apply to.
    async fn bulk_preview(&self, filter: &ExecutionFilter, action: Action) -> Result<BulkPreview, ConsoleError>;
    /// Applies the action to every matching execution (the filter's cursor bounds it to the preview).
    async fn bulk_apply(&self, filter: &ExecutionFilter, action: Action) -> Result<BulkOutcome, ConsoleError>;
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
