use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use crate::components::{error_view::ErrorView, format};
use crate::model::encode_component;
use crate::server::list_audit;
use crate::view::AuditEntry;

/// The audit log: every operator action, newest first, who did it and from where.
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let cursor = Memo::new(move |_| query.read().get("cursor"));
    let page = Resource::new(move || cursor.get(), list_audit);
    let body = move || {
        Suspend::new(async move {
            match page.await {
                Ok(page) if page.data.is_empty() => {
                    view! { <p class="empty">"No operator action on record."</p> }.into_any()
                }
                Ok(page) => {
                    let rows = page
                        .data
                        .into_iter()
                        .map(|e| view! { <AuditRow entry=e/> })
                        .collect_view();
                    let older = page.next_cursor.map(|c| {
                        view! { <A href=format!("/audit?cursor={}", encode_component(&c)) attr:class="older" attr:rel="next">"Older →"</A> }
                    });
                    view! {
                        <table class="audit-table">
                            <thead>
                                <tr>
                                    <th>"When"</th>
                                    <th>"Who"</th>
                                    <th>"Session"</th>
                                    <th>"From"</th>
                                    <th>"Action"</th>
                                    <th>"On"</th>
                                    <th>"Changed"</th>
                                </tr>
                            </thead>
                            <tbody>{rows}</tbody>
                        </table>
                        <nav class="pager">{older}</nav>
                    }
                    .into_any()
                }
                Err(error) => view! { <ErrorView error/> }.into_any(),
            }
        })
    };
    view! {
        <section class="audit">
            <h1>"Audit log"</h1>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>{body}</Transition>
        </section>
    }
}

#[component]
fn AuditRow(entry: AuditEntry) -> impl IntoView {
    let e = entry;
    // A single action names its execution (and a re-run the one it created); a bulk action its filter.
    let target = if e.action.starts_with("bulk-") {
        view! { <code>{if e.target.is_empty() { "all executions".to_string() } else { e.target.clone() }}</code> }
            .into_any()
    } else {
        let created = e
            .result_id
            .clone()
            .map(|id| view! { " → " <A href=format!("/executions/{}", encode_component(&id))>{id.clone()}</A> });
        view! { <A href=format!("/executions/{}", encode_component(&e.target))>{e.target.clone()}</A> {created} }
            .into_any()
    };
    let changed = if e.skipped > 0 {
        format!("{} ({} skipped)", e.applied, e.skipped)
    } else {
        e.applied.to_string()
    };
    view! {
        <tr class="audit-entry" data-action=e.action.clone()>
            <td>{format::time(&e.at)}</td>
            <td class="role">{e.role.clone()}</td>
            <td class="session"><code>{e.session_id.clone().unwrap_or_else(|| "—".into())}</code></td>
            <td class="address">{e.address.clone()}</td>
            <td class="action">{e.action.clone()}</td>
            <td class="target">{target}</td>
            <td class="applied">{changed}</td>
        </tr>
    }
}
