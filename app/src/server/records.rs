use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::ConsoleError;
use crate::overview::{Overview, Window};
use crate::records::{ObjectTimeline, RecordFilter, RecordPage};

/// One page of local records matching the filter.
#[server(prefix = "/console/fn", endpoint = "list_records", input = Json)]
pub async fn list_records(filter: RecordFilter) -> Result<RecordPage, ConsoleError> {
    use super::session;
    let console = session::authorized().await?;
    console.records(&filter).await.map_err(session::failed)
}

/// An object's timeline: its executions in the order of the events' `created`, and its record.
#[server(prefix = "/console/fn", endpoint = "get_object")]
pub async fn get_object(id: String) -> Result<ObjectTimeline, ConsoleError> {
    use super::session;
    let console = session::authorized().await?;
    console.object(&id).await.map_err(session::failed)
}

/// The overview's charts and backlog over the window.
#[server(prefix = "/console/fn", endpoint = "overview", input = Json)]
pub async fn get_overview(window: Window) -> Result<Overview, ConsoleError> {
    use super::session;
    let console = session::authorized().await?;
    console.overview(window).await.map_err(session::failed)
}
