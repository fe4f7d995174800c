use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::ConsoleError;
use crate::model::ExecutionFilter;
use crate::view::{AuditPage, ExecutionDetail, ListView};

/// One page of executions matching the filter, with counts per status and the facets.
#[server(prefix = "/console/fn", endpoint = "list_executions", input = Json)]
pub async fn list_executions(filter: ExecutionFilter) -> Result<ListView, ConsoleError> {
    use super::session;
    let console = session::authorized().await?;
    console.list(&filter).await.map_err(session::failed)
}

/// An execution with its attempts, payload and re-runs.
#[server(prefix = "/console/fn", endpoint = "get_execution")]
pub async fn get_execution(id: String) -> Result<ExecutionDetail, ConsoleError> {
    use super::session;
    let console = session::authorized().await?;
    console.detail(&id).await.map_err(session::failed)
}

/// The event types and API versions present, for the filter form.
#[server(prefix = "/console/fn", endpoint = "facets")]
pub async fn get_facets() -> Result<crate::view::Facets, ConsoleError> {
    use super::session;
    let console = session::authorized().await?;
    console.facets().await.map_err(session::failed)
}

/// The audit log, newest first; `cursor` (from the previous page) pages to older entries.
#[server(prefix = "/console/fn", endpoint = "audit")]
pub async fn list_audit(cursor: Option<String>) -> Result<AuditPage, ConsoleError> {
    use super::session;
    let console = session::authorized().await?;
    let cursor = cursor
        .filter(|c| !c.is_empty())
        .map(|c| crate::model::Cursor::decode(&c))
        .transpose()
        .map_err(|e| session::failed(ConsoleError::Invalid(e)))?;
    console.audit(cursor).await.map_err(session::failed)
}
