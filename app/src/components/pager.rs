use leptos::prelude::*;
use leptos_router::components::A;

use crate::model::ExecutionFilter;
use crate::query::list_href;

/// Keyset pagination: "Newer" and "Older" keep the filter and move the cursor.
#[component]
pub fn Pager(filter: ExecutionFilter, prev: Option<String>, next: Option<String>) -> impl IntoView {
    let newer =
        prev.map(|c| view! { <A href=list_href(&filter, Some(&c)) attr:class="newer" attr:rel="prev">"← Newer"</A> });
    let older =
        next.map(|c| view! { <A href=list_href(&filter, Some(&c)) attr:class="older" attr:rel="next">"Older →"</A> });
    view! { <nav class="pager">{newer} {older}</nav> }
}
