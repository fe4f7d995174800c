use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::ConsoleError;
use crate::event_types::Pause;
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

/// The overview's charts and backlog over the window, with the pause holding each of its
/// failing types (which get Pause and which Resume). One server function for both: a resource
/// that awaited a second one ran it, on the server, outside the request's context ("the console
/// is not configured"), and the browser then hydrated that error over the rendered chart.
#[server(prefix = "/console/fn", endpoint = "overview", input = Json)]
pub async fn get_overview(window: Window) -> Result<(Overview, Vec<Option<Pause>>), ConsoleError> {
    use super::session;
    let console = session::authorized().await?;
    let overview = console.overview(window).await.map_err(session::failed)?;
    let types: Vec<String> = overview.failing_types.iter().map(|(t, _)| t.clone()).collect();
    let pauses = console.pauses_of(&types).await.map_err(session::failed)?;
    Ok((overview, pauses))
}
