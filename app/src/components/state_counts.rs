use leptos::prelude::*;
use leptos_router::components::A;

use crate::model::ExecutionFilter;
use crate::query::list_href;
use crate::view::StateCount;

/// Counts per status for the current filter; each links to the filter narrowed to that status.
#[component]
pub fn StateCounts(counts: Vec<StateCount>, filter: ExecutionFilter) -> impl IntoView {
    let items = counts
        .into_iter()
        .map(|c| {
            let mut f = filter.clone();
            f.statuses = vec![c.state];
            f.cursor = None;
            let n = if c.capped {
                format!("{}+", c.count)
            } else {
                c.count.to_string()
            };
            view! {
                <li data-state=c.state.as_str()>
                    <A href=list_href(&f, None)>
                        <span class=format!("state state-{}", c.state)>{c.state.as_str()}</span>
                        " "
                        <span class="count">{n}</span>
                    </A>
                </li>
            }
        })
        .collect_view();
    view! { <ul class="state-counts" aria-label="Counts per status">{items}</ul> }
}
