use leptos::prelude::*;
use leptos_router::components::A;

use crate::components::{
    error_view::{ActionError, ErrorView},
    format,
    notice::Notice,
    pause_button::{PauseButton, TypePauseButton},
    require_session::can_act,
};
use crate::event_types::{EventTypes, Pause};
use crate::model::{ExecutionFilter, State};
use crate::query::list_href;
use crate::server::{SetPaused, get_event_types};

/// Every event type seen, with counts per state and whether it is paused; pause or resume a
/// type, or a prefix pattern such as `invoice.*` (types first seen later are held too).
#[component]
pub fn EventTypesPage() -> impl IntoView {
    let action = ServerAction::<SetPaused>::new();
    let types = Resource::new(move || action.version().get(), |_| get_event_types());
    let body = move || {
        Suspend::new(async move {
            match types.await {
                Ok(types) => view! { <EventTypesView types action/> }.into_any(),
                Err(error) => view! { <ErrorView error/> }.into_any(),
            }
        })
    };
    view! {
        <section class="event-types">
            <h1>"Event types"</h1>
            <Notice/>
            <ActionError action/>
            {can_act().then(|| view! {
                <ActionForm action=action attr:class="pause-pattern">
                    <label>
                        "Pause a type or prefix "
                        <input type="text" name="pattern" placeholder="invoice.* or invoice.paid" required=true maxlength="200"/>
                    </label>
                    <input type="hidden" name="action" value="pause"/>
                    <input type="hidden" name="back" value="/event-types"/>
                    <button type="submit">"Pause"</button>
                </ActionForm>
            })}
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>{body}</Transition>
        </section>
    }
}

fn holds(p: &Pause) -> String {
    format!(
        "paused by {} since {}: holds {} execution{}",
        p.paused_by,
        format::time(&p.paused_at),
        p.holds,
        if p.holds == 1 { "" } else { "s" }
    )
}

#[component]
fn EventTypesView(types: EventTypes, action: ServerAction<SetPaused>) -> impl IntoView {
    let pauses = (!types.pauses.is_empty()).then(|| {
        let rows = types
            .pauses
            .iter()
            .map(|p| {
                view! {
                    <tr data-pattern=p.pattern.clone()>
                        <td><code>{p.pattern.clone()}</code></td>
                        <td class="paused">{holds(p)}</td>
                        <td><PauseButton action pattern=p.pattern.clone() paused=true back="/event-types"/></td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <h2>"Paused"</h2>
            <table class="pauses"><thead><tr><th>"Pattern"</th><th>"Since"</th><th></th></tr></thead><tbody>{rows}</tbody></table>
        }
    });
    let header = State::ALL
        .iter()
        .map(|s| view! { <th>{s.as_str()}</th> })
        .collect_view();
    let rows = types
        .types
        .into_iter()
        .map(|t| {
            let filter = ExecutionFilter {
                types: vec![t.event_type.clone()],
                ..Default::default()
            };
            let counts = State::ALL
                .iter()
                .map(|s| {
                    let n = t.counts.iter().find(|(c, _)| c == s).map_or(0, |(_, n)| *n);
                    view! { <td class="count" data-state=s.as_str()>{n}</td> }
                })
                .collect_view();
            // A type held by a prefix pattern is resumed through that pattern.
            let status = match &t.paused {
                Some(p) => view! { <td class="paused">{format!("{} ({})", holds(p), p.pattern)}</td> }.into_any(),
                None => view! { <td class="running">"running"</td> }.into_any(),
            };
            let button = view! {
                <td><TypePauseButton action event_type=t.event_type.clone() paused=t.paused.clone() back="/event-types"/></td>
            };
            let name = t.event_type.clone();
            view! {
                <tr data-type=t.event_type>
                    <td><A href=list_href(&filter, None)>{name}</A></td>
                    {counts}
                    {status}
                    {button}
                </tr>
            }
        })
        .collect_view();
    view! {
        {pauses}
        <h2>"Seen"</h2>
        <table class="types">
            <thead><tr><th>"Type"</th>{header}<th>"Status"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
