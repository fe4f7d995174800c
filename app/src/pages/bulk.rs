use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use crate::components::error_view::{ActionError, ErrorView};
use crate::components::require_session::can_act;
use crate::error::ConsoleError;
use crate::model::{Action, ExecutionFilter};
use crate::query::{filter_from, list_href};
use crate::server::{ApplyBulk, preview_bulk};
use crate::view::BulkPreview;

/// Confirmation of a bulk action over a filter: states how many executions it will touch.
#[component]
pub fn BulkPage() -> impl IntoView {
    let query = use_query_map();
    let action = Memo::new(move |_| query.read().get("action").map(|a| a.parse::<Action>()));
    let filter = Memo::new(move |_| filter_from(&query.read()));
    let preview = Resource::new(
        move || (action.get(), filter.get()),
        |(action, filter)| async move {
            match (action, filter) {
                (Some(Ok(Action::Retry)) | None, _) => {
                    Err(ConsoleError::Invalid("a bulk action is `rerun` or `cancel`".into()))
                }
                (Some(Err(e)), _) | (_, Err(e)) => Err(ConsoleError::Invalid(e)),
                (Some(Ok(action)), Ok(filter)) => preview_bulk(action.as_str().into(), filter.query_string(None)).await,
            }
        },
    );
    let apply = ServerAction::<ApplyBulk>::new();
    let body = move || {
        Suspend::new(async move {
            match (preview.await, filter.get_untracked()) {
                (Ok(preview), Ok(filter)) => view! { <Confirm preview filter apply/> }.into_any(),
                (Err(error), _) => view! { <ErrorView error/> }.into_any(),
                (_, Err(e)) => view! { <ErrorView error=ConsoleError::Invalid(e)/> }.into_any(),
            }
        })
    };
    view! {
        <section class="bulk">
            <h1>"Bulk action"</h1>
            <ActionError action=apply/>
            <Transition fallback=|| view! { <p class="loading">"Counting…"</p> }>{body}</Transition>
        </section>
    }
}

#[component]
fn Confirm(preview: BulkPreview, filter: ExecutionFilter, apply: ServerAction<ApplyBulk>) -> impl IntoView {
    let back = list_href(&filter, None);
    let described = describe(&filter);
    let (verb, done) = match preview.action {
        Action::Cancel => ("Cancel", "cancelled"),
        _ => ("Re-run", "re-run"),
    };
    let n = preview.count;
    let noun = if n == 1 { "execution" } else { "executions" };
    let question = if preview.too_many {
        view! { <p class="error">{format!("More than {n} executions match; narrow the filter to {} them in one go.", verb.to_lowercase())}</p> }.into_any()
    } else if n == 0 {
        view! { <p class="empty">{format!("No execution matching this filter can be {done}.")}</p> }.into_any()
    } else if !can_act() {
        view! { <p class="viewer">{format!("{n} {noun} match; this login can browse but not act.")}</p> }.into_any()
    } else {
        let bounded = filter.query_string(preview.up_to.as_deref());
        view! {
            <p class="confirm">{format!("{verb} {n} {noun} matching this filter?")}</p>
            <ActionForm action=apply attr:class="bulk-apply">
                <input type="hidden" name="action" value=preview.action.as_str()/>
                <input type="hidden" name="query" value=bounded/>
                <button type="submit">{format!("{verb} {n} {noun}")}</button>
            </ActionForm>
        }
        .into_any()
    };
    view! {
        <p class="filter-summary">"Filter: " <code>{described}</code></p>
        {question}
        <p><A href=back>"← Back to the list"</A></p>
    }
}

/// The filter in words (its query parameters), or "all executions".
fn describe(filter: &ExecutionFilter) -> String {
    let pairs = filter.to_pairs();
    if pairs.is_empty() {
        return "all executions".into();
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
