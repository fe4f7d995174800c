use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

/// The outcome of the action that brought us here, read from the query (`done=…`), so it
/// shows the same with and without JavaScript.
#[component]
pub fn Notice() -> impl IntoView {
    let query = use_query_map();
    let message = move || {
        let q = query.read();
        let n = q.get("n").unwrap_or_default();
        let skipped = q.get("skipped").filter(|s| s != "0");
        let text = match q.get("done")?.as_str() {
            "retry" => "Retry requested: the execution runs now.".to_string(),
            "cancel" => "Cancelled (a running attempt is aborted).".to_string(),
            "rerun" => "Re-run created: this is the new execution.".to_string(),
            "bulk-rerun" => format!("Re-ran {n} executions."),
            "bulk-cancel" => format!("Cancelled {n} executions."),
            "pause" => format!(
                "Paused {}: its executions are held (not run) until it is resumed.",
                q.get("pattern").unwrap_or_default()
            ),
            "resume" => format!(
                "Resumed {}: held executions run in their usual order.",
                q.get("pattern").unwrap_or_default()
            ),
            _ => return None,
        };
        let skipped = skipped.map(|s| format!(" {s} skipped: their state changed meanwhile."));
        let from = q.get("from_id");
        Some(view! {
            <p class="notice" role="status">
                {text}
                {skipped}
                {from.map(|id| view! { " Re-run of " <A href=format!("/executions/{id}")>{id.clone()}</A> "." })}
            </p>
        })
    };
    view! { {message} }
}
