//! Event types (pause, resume) and failure alerts (issue 18).

use leptos::prelude::*;

use crate::alerts::Alerts;
use crate::error::ConsoleError;
use crate::event_types::{EventTypes, Pause};

/// Every event type seen, with counts and pauses.
#[server(prefix = "/console/fn", endpoint = "event_types")]
pub async fn get_event_types() -> Result<EventTypes, ConsoleError> {
    use super::session;
    let console = session::authorized().await?;
    console.event_types().await.map_err(session::failed)
}

/// Every pause, for the banner on the list.
#[server(prefix = "/console/fn", endpoint = "pauses")]
pub async fn get_pauses() -> Result<Vec<Pause>, ConsoleError> {
    use super::session;
    let console = session::authorized().await?;
    console.pauses().await.map_err(session::failed)
}

/// Pauses or resumes a pattern (`action` is `pause` or `resume`), then returns to `back`
/// (a path in the console) with the outcome; posted by an `ActionForm`, so it works without JavaScript.
#[server(prefix = "/console/fn", endpoint = "set_paused")]
pub async fn set_paused(pattern: String, action: String, back: String) -> Result<Pause, ConsoleError> {
    use super::session;
    let (console, actor) = session::operator().await?;
    let paused = match action.as_str() {
        "pause" => true,
        "resume" => false,
        other => {
            return Err(session::failed(ConsoleError::Invalid(format!(
                "unknown action `{other}` (pause or resume)"
            ))));
        }
    };
    let pause = console
        .set_paused(&actor, pattern.trim(), paused)
        .await
        .map_err(session::failed)?;
    // Only back to a page of this console: never an address someone else wrote into the form.
    let back = match crate::query::safe_next(&back) {
        path if path == "/" && back != "/" => "/event-types".to_string(),
        path => path,
    };
    let sep = if back.contains('?') { '&' } else { '?' };
    session::redirect(&format!(
        "{back}{sep}done={action}&pattern={}",
        crate::model::encode_component(&pause.pattern)
    ));
    Ok(pause)
}

/// Failure alerts and their deliveries, newest first.
#[server(prefix = "/console/fn", endpoint = "alerts")]
pub async fn get_alerts() -> Result<Alerts, ConsoleError> {
    use super::session;
    let console = session::authorized().await?;
    console.alerts().await.map_err(session::failed)
}
