use leptos::prelude::*;
use leptos_router::components::A;

use crate::components::{error_view::ActionError, format, pause_button::PauseButton};
use crate::server::{SetPaused, get_pauses};

/// Says, on the list, which event types are paused and how many executions each holds,
/// with a button to resume each (for an operator). Nothing when no type is paused. `action` is
/// the page's: a pause or resume from any of its buttons refreshes the banner, and its error
/// shows here.
#[component]
pub fn PausedBanner(action: ServerAction<SetPaused>) -> impl IntoView {
    let pauses = Resource::new(move || action.version().get(), |_| get_pauses());
    let body = move || {
        Suspend::new(async move {
            let pauses = pauses.await.unwrap_or_default();
            // No empty live region: with nothing paused there is nothing to announce.
            let any = !pauses.is_empty();
            let items = pauses
                .into_iter()
                .map(|p| {
                    view! {
                        <li class="paused-type" data-pattern=p.pattern.clone()>
                            <strong>{format!("{} is paused", p.pattern)}</strong>
                            {format!(
                                " by {} since {}: holds {} scheduled execution{}. Webhooks are still accepted and stored. ",
                                p.paused_by,
                                format::time(&p.paused_at),
                                p.holds,
                                if p.holds == 1 { "" } else { "s" }
                            )}
                            <PauseButton action pattern=p.pattern.clone() paused=true back="/"/>
                        </li>
                    }
                })
                .collect_view();
            any.then(|| view! { <ul class="paused-banner" role="status">{items}</ul> })
        })
    };
    view! {
        <ActionError action/>
        <Transition fallback=|| ()>{body}</Transition>
        <p class="event-types-link"><A href="/event-types">"Pause or resume event types…"</A></p>
    }
}
