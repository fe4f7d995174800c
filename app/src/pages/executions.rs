use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use crate::components::require_session::can_act;
use crate::components::{
    auto_refresh::AutoRefresh, error_view::ErrorView, execution_table::ExecutionTable, filter_form::FilterForm,
    last_sweep::LastSweep, notice::Notice, overview_chart::OverviewPanel, pager::Pager, paused_banner::PausedBanner,
    state_counts::StateCounts,
};
use crate::error::ConsoleError;
use crate::model::{Action, ExecutionFilter};
use crate::overview::Window;
use crate::query::filter_from;
use crate::server::{SetPaused, get_facets, get_overview, list_executions};

/// The executions list: filter form, counts per status, the table and keyset pagination.
/// The filter lives in the URL query.
#[component]
pub fn ExecutionsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| filter_from(&query.read()));
    // Bumped by auto-refresh: reloads the list (not the form) with the same filter.
    let tick = RwSignal::new(0u64);
    // Every Pause and Resume on the page (banner, failing types, filtered type) is this action:
    // one submission refreshes what each of them shows.
    let pause = ServerAction::<SetPaused>::new();
    let facets = Resource::new(|| (), |_| get_facets());
    let window = Memo::new(move |_| Window::parse(query.read().get("chart").as_deref()));
    let overview = Resource::new(
        move || (window.get(), tick.get(), pause.version().get()),
        |(window, ..)| get_overview(window),
    );
    let charts = move || {
        Suspend::new(async move {
            let filter = filter.get_untracked().unwrap_or_default();
            // The charts are a help, not the page: their error stays in their place.
            match overview.await {
                Ok((overview, pauses)) => view! { <OverviewPanel overview pauses filter action=pause/> }.into_any(),
                Err(error) => view! { <ErrorView error/> }.into_any(),
            }
        })
    };
    let list = Resource::new(
        move || (filter.get(), tick.get()),
        |(filter, _)| async move {
            match filter {
                Ok(filter) => list_executions(filter).await,
                Err(e) => Err(ConsoleError::Invalid(e)),
            }
        },
    );

    let form = move || {
        let filter = filter.get().unwrap_or_default();
        Suspend::new(async move {
            let facets = facets.await.unwrap_or_default();
            view! { <FilterForm filter facets/> }
        })
    };
    let results = move || {
        Suspend::new(async move {
            match (list.await, filter.get_untracked()) {
                (Ok(view), Ok(filter)) => view! {
                    <LastSweep sweep=view.last_sweep/>
                    <StateCounts counts=view.counts filter=filter.clone()/>
                    <BulkLinks filter=filter.clone()/>
                    <ExecutionTable rows=view.page.data now=view.now_ms/>
                    <Pager filter prev=view.page.prev_cursor next=view.page.next_cursor/>
                }
                .into_any(),
                (Err(error), _) => view! { <ErrorView error/> }.into_any(),
                (_, Err(e)) => view! { <ErrorView error=ConsoleError::Invalid(e)/> }.into_any(),
            }
        })
    };

    view! {
        <section class="executions">
            <div class="toolbar">
                <h1>"Executions"</h1>
                <AutoRefresh tick/>
            </div>
            <Notice/>
            <PausedBanner action=pause/>
            <Transition fallback=|| ()>{charts}</Transition>
            <Transition fallback=|| ()>{form}</Transition>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>{results}</Transition>
        </section>
    }
}

/// Links to the confirmation of a bulk action over the current filter (not for a viewer).
#[component]
fn BulkLinks(filter: ExecutionFilter) -> impl IntoView {
    if !can_act() {
        return ().into_any();
    }
    let href = |action: Action| {
        let qs = filter.query_string(None);
        let sep = if qs.is_empty() { "" } else { "&" };
        format!("/bulk?action={}{sep}{qs}", action.as_str())
    };
    view! {
        <p class="bulk-links">
            "Every execution matching this filter: "
            <A href=href(Action::Rerun) attr:class="bulk-rerun">"Re-run all…"</A>
            " "
            <A href=href(Action::Cancel) attr:class="bulk-cancel">"Cancel all…"</A>
        </p>
    }
    .into_any()
}
