use leptos::prelude::*;

use crate::server::SetPaused;

/// One small form that pauses or resumes `pattern` and comes back to `back` (a POST that
/// works without JavaScript).
#[component]
pub fn PauseButton(
    action: ServerAction<SetPaused>,
    pattern: String,
    paused: bool,
    back: &'static str,
) -> impl IntoView {
    let (verb, label) = if paused {
        ("resume", "Resume")
    } else {
        ("pause", "Pause")
    };
    view! {
        <ActionForm action=action attr:class=format!("action action-{verb}")>
            <input type="hidden" name="pattern" value=pattern/>
            <input type="hidden" name="action" value=verb/>
            <input type="hidden" name="back" value=back/>
            <button type="submit">{label}</button>
        </ActionForm>
    }
}
