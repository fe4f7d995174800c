use leptos::prelude::*;
use leptos_router::components::A;

use super::format;
use super::record_table::ObjectLink;
use crate::model::{Execution, State};

/// The list of executions, newest first.
#[component]
pub fn ExecutionTable(rows: Vec<Execution>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="empty">"No executions match this filter."</p> }.into_any();
    }
    let rows = rows
        .into_iter()
        .map(|e| view! { <ExecutionRow execution=e/> })
        .collect_view();
    view! {
        <table class="executions-table">
            <thead>
                <tr>
                    <th>"Status"</th>
                    <th>"Event type"</th>
                    <th>"Event id"</th>
                    <th>"Mode"</th>
                    <th>"API version"</th>
                    <th>"Object id"</th>
                    <th>"Attempts"</th>
                    <th>"Scheduled for"</th>
                    <th>"Started"</th>
                    <th>"Duration"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[component]
fn ExecutionRow(execution: Execution) -> impl IntoView {
    let e = execution;
    // While scheduled, the next run time is what matters; afterwards the first due time.
    let scheduled_for = if e.state == State::Scheduled {
        e.next_run_at.clone().or(Some(e.scheduled_at.clone()))
    } else {
        Some(e.scheduled_at.clone())
    };
    view! {
        <tr class="execution" data-id=e.id.clone() data-state=e.state.as_str()>
            <td><span class=format!("state state-{}", e.state)>{e.state.as_str()}</span></td>
            <td class="type">{e.event_type.clone()}</td>
            <td class="event"><A href=format!("/executions/{}", e.id)>{e.event_id.clone()}</A></td>
            <td class="mode">{format::livemode(e.livemode)}</td>
            <td class="api-version">{e.api_version.clone().unwrap_or_else(|| "—".into())}</td>
            <td class="object"><ObjectLink id=e.object_id.clone()/></td>
            <td class="attempts">{format!("{}/{}", e.attempts, e.max_attempts)}</td>
            <td>{format::opt_time(&scheduled_for)}</td>
            <td>{format::opt_time(&e.started_at)}</td>
            <td>{format::duration(e.duration_ms)}</td>
        </tr>
    }
}
