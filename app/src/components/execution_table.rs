use leptos::prelude::*;
use leptos_router::components::A;

use super::format::{self, Time};
use super::record_table::ObjectLink;
use crate::model::{Execution, State};

/// The list of executions, newest first. On narrow screens each row becomes a card whose
/// cells carry their column's name (`data-label`, style/main.css).
#[component]
pub fn ExecutionTable(
    rows: Vec<Execution>,
    /// The server's clock when the rows were read (ms): times show relative to it, the same
    /// on the server and after hydration.
    #[prop(default = None)]
    now: Option<i64>,
) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="empty">"No executions match this filter."</p> }.into_any();
    }
    let rows = rows
        .into_iter()
        .map(|e| view! { <ExecutionRow execution=e now/> })
        .collect_view();
    view! {
        <table class="executions-table collapsible">
            <caption class="muted">"Times relative to now; hover for the exact time (UTC)."</caption>
            <thead>
                <tr>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Event type"</th>
                    <th scope="col">"Event id"</th>
                    <th scope="col">"Mode"</th>
                    <th scope="col">"API version"</th>
                    <th scope="col">"Object id"</th>
                    <th scope="col">"Attempts"</th>
                    <th scope="col">"Scheduled for"</th>
                    <th scope="col">"Started"</th>
                    <th scope="col">"Duration"</th>
                    <th scope="col">"Last error"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[component]
fn ExecutionRow(execution: Execution, now: Option<i64>) -> impl IntoView {
    let e = execution;
    // While scheduled, the next run time is what matters; afterwards the first due time.
    let scheduled_for = if e.state == State::Scheduled {
        e.next_run_at.clone().or(Some(e.scheduled_at.clone()))
    } else {
        Some(e.scheduled_at.clone())
    };
    // Failed ones say why; scheduled ones with an error are retrying and say what went wrong last.
    let error = match e.state {
        State::Failed | State::Scheduled | State::Running => e.last_error.clone(),
        _ => None,
    };
    let error = error.map(|m| view! { <span class="last-error" title=m.clone()>{m.clone()}</span> });
    view! {
        <tr class="execution" data-id=e.id.clone() data-state=e.state.as_str()>
            // Origin and account ride in existing cells: two more columns overflow a 1280 px screen.
            <td data-label="Status"><span class=format!("state state-{}", e.state)>{e.state.as_str()}</span>
                <small class="origin">{e.origin.as_str()}</small></td>
            <td data-label="Event type" class="type">{e.event_type.clone()}</td>
            <td data-label="Event id" class="event"><A href=format!("/executions/{}", e.id)>{e.event_id.clone()}</A></td>
            <td data-label="Mode" class="mode">{format::livemode(e.livemode)}
                {e.account.clone().map(|a| view! { <small class="account">{a}</small> })}</td>
            <td data-label="API version" class="api-version">{e.api_version.clone().unwrap_or_else(|| "—".into())}</td>
            <td data-label="Object id" class="object"><ObjectLink id=e.object_id.clone()/></td>
            <td data-label="Attempts" class="attempts">{format!("{}/{}", e.attempts, e.max_attempts)}</td>
            <td data-label="Scheduled for" class="time"><Time at=scheduled_for now/></td>
            <td data-label="Started" class="time"><Time at=e.started_at.clone() now/></td>
            <td data-label="Duration">{format::duration(e.duration_ms)}</td>
            <td data-label="Last error" class="error-cell">{error}</td>
        </tr>
    }
}
