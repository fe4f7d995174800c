use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::ConsoleError;
use crate::model::{ExecutionDetail, ExecutionFilter};
use crate::view::ListView;

/// One page of executions matching the filter, with counts per status and the facets.
#[server(prefix = "/console/fn", endpoint = "list_executions", input = Json)]
pub async fn list_executions(filter: ExecutionFilter) -> Result<ListView, ConsoleError> {
    use super::session;
    let console = session::authorized()?;
    console.list(&filter).await.map_err(session::failed)
}

/// An execution with its attempts, payload and re-runs.
#[server(prefix = "/console/fn", endpoint = "get_execution")]
pub async fn get_execution(id: String) -> Result<ExecutionDetail, ConsoleError> {
    use super::session;
    let console = session::authorized()?;
    console.detail(&id).await.map_err(session::failed)
}

/// The event types and API versions present, for the filter form.
#[server(prefix = "/console/fn", endpoint = "facets")]
pub async fn get_facets() -> Result<crate::view::Facets, ConsoleError> {
    use super::session;
    let console = session::authorized()?;
    console.facets().await.map_err(session::failed)
}
