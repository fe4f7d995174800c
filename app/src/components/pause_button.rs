use leptos::prelude::*;

use crate::components::require_session::can_act;
use crate::event_types::Pause;
use crate::server::SetPaused;

/// One small form that pauses or resumes `pattern` and comes back to `back` (a POST that
/// works without JavaScript). A viewer gets none: the server refuses a viewer's pause or
/// resume whatever the page showed.
#[component]
pub fn PauseButton(
    action: ServerAction<SetPaused>,
    pattern: String,
    paused: bool,
    #[prop(into)] back: String,
) -> impl IntoView {
    if !can_act() {
        return ().into_any();
    }
    let (verb, label) = if paused {
        ("resume", "Resume")
    } else {
        ("pause", "Pause")
    };
    // Several buttons on one page: each names what it pauses or resumes.
    let name = format!("{label} {pattern}");
    view! {
        <ActionForm action=action attr:class=format!("action action-{verb}")>
            <input type="hidden" name="pattern" value=pattern.clone()/>
            <input type="hidden" name="action" value=verb/>
            <input type="hidden" name="back" value=back/>
            <button type="submit" aria-label=name>{label}</button>
        </ActionForm>
    }
    .into_any()
}

/// Pause for an event type that runs; Resume of the pause that holds it (the type itself, or
/// a prefix pattern such as `invoice.*`) when it is paused.
#[component]
pub fn TypePauseButton(
    action: ServerAction<SetPaused>,
    event_type: String,
    paused: Option<Pause>,
    #[prop(into)] back: String,
) -> impl IntoView {
    match paused {
        Some(p) => view! { <PauseButton action pattern=p.pattern paused=true back/> }.into_any(),
        None => view! { <PauseButton action pattern=event_type paused=false back/> }.into_any(),
    }
}
