use leptos::prelude::*;

use super::format;
use crate::view::SweepView;

/// The latest reconciliation from Stripe's events list: when, over which window, what it
/// found, and why it stopped if it failed. Nothing when none ever ran.
#[component]
pub fn LastSweep(sweep: Option<SweepView>) -> impl IntoView {
    let Some(s) = sweep else {
        return ().into_any();
    };
    let who = if s.trigger == "command" {
        "deferral reconcile"
    } else {
        "periodic sweep"
    };
    let outcome = match (&s.error, &s.finished_at) {
        (Some(e), _) => format!("stopped: {e}"),
        (None, None) if s.interrupted => "interrupted: its process stopped before it finished".to_string(),
        (None, None) => "running".to_string(),
        (None, Some(_)) => "done".to_string(),
    };
    let class = if s.error.is_some() || s.interrupted {
        "last-sweep failed"
    } else {
        "last-sweep"
    };
    view! {
        <p class=class aria-label="Latest reconciliation">
            <strong>"Last reconciliation "</strong>
            <span class="when">{format::time(&s.started_at)}</span>
            " (" {who} ") · events since "
            <span class="since">{format::time(&s.since)}</span>
            " · " {s.pages} " pages, "
            <span class="seen">{s.seen}</span> " seen, "
            <span class="added">{s.added}</span> " added · "
            <span class="outcome">{outcome}</span>
        </p>
    }
    .into_any()
}
