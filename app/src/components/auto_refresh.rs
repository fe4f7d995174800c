use std::time::Duration;

use leptos::prelude::*;

/// How often the list reloads while auto-refresh is on.
pub const REFRESH_EVERY: Duration = Duration::from_secs(3);

/// A toggle that bumps `tick` every few seconds while on. It only works once the wasm has
/// hydrated the page, which is what the hydration test relies on.
#[component]
pub fn AutoRefresh(tick: RwSignal<u64>) -> impl IntoView {
    let on = RwSignal::new(false);
    Effect::new(move |_| {
        if on.get() {
            let handle = set_interval_with_handle(move || tick.update(|t| *t += 1), REFRESH_EVERY).ok();
            on_cleanup(move || {
                if let Some(h) = handle {
                    h.clear();
                }
            });
        }
    });
    view! {
        <button
            type="button"
            class="auto-refresh"
            aria-pressed=move || on.get().to_string()
            on:click=move |_| on.update(|v| *v = !*v)
        >
            {move || if on.get() { "Auto-refresh: on" } else { "Auto-refresh: off" }}
        </button>
    }
}
