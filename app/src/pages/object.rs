use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use crate::components::{error_view::ErrorView, format, record_table::RecordTable};
use crate::records::{ObjectRecord, ObjectTimeline, RecordRows, TimelineEntry};
use crate::server::get_object;

/// `/objects/{id}`: everything that happened to one Stripe object, in the order of its events'
/// `created` (not of arrival), and what Deferral keeps about it now.
#[component]
pub fn ObjectPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let timeline = Resource::new(move || id.get(), get_object);
    let body = move || {
        Suspend::new(async move {
            match timeline.await {
                Ok(timeline) => view! { <TimelineView timeline/> }.into_any(),
                Err(error) => view! { <ErrorView error/> }.into_any(),
            }
        })
    };
    view! {
        <section class="object">
            <p class="back"><A href="/">"← Executions"</A></p>
            <h1>"Object " <code>{move || id.get()}</code></h1>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>{body}</Transition>
        </section>
    }
}

#[component]
fn TimelineView(timeline: ObjectTimeline) -> impl IntoView {
    let ObjectTimeline {
        entries,
        truncated,
        record,
        related,
        ..
    } = timeline;
    let record = match record {
        None => view! { <p class="empty">"No local record: Deferral keeps none for this kind of object, or no event has created it yet."</p> }.into_any(),
        Some(record) => view! { <RecordTable rows=as_rows(record)/> }.into_any(),
    };
    let related = related
        .into_iter()
        .map(|rows| {
            let title = related_title(&rows);
            view! { <h3>{title}</h3> <RecordTable rows/> }
        })
        .collect_view();
    let count = entries.len();
    view! {
        <h2>"Current record"</h2>
        <div class="current-record">{record}</div>
        <h2>"Timeline"</h2>
        <p class="muted">
            {format!("{count} execution{} in the order of the events' created time (UTC)", if count == 1 { "" } else { "s" })}
            {truncated.then_some("; only the first ones are shown")}
        </p>
        <Timeline entries/>
        {(!related.is_empty()).then(|| view! { <h2>"Related records"</h2> })}
        {related}
    }
}

fn as_rows(record: ObjectRecord) -> RecordRows {
    match record {
        ObjectRecord::Customer(c) => RecordRows::Customers(vec![c]),
        ObjectRecord::Subscription(s) => RecordRows::Subscriptions(vec![s]),
        ObjectRecord::PaymentFailure(f) => RecordRows::PaymentFailures(vec![f]),
        ObjectRecord::Dispute(d) => RecordRows::Disputes(vec![d]),
    }
}

fn related_title(rows: &RecordRows) -> &'static str {
    match rows {
        RecordRows::Customers(_) => "Customer",
        RecordRows::Subscriptions(_) => "Subscriptions",
        RecordRows::PaymentFailures(_) => "Payment failures",
        RecordRows::Notifications(_) => "Notifications",
        RecordRows::Disputes(_) => "Disputes",
    }
}

#[component]
fn Timeline(entries: Vec<TimelineEntry>) -> impl IntoView {
    if entries.is_empty() {
        return view! { <p class="empty">"No execution for this object."</p> }.into_any();
    }
    let items = entries
        .into_iter()
        .map(
            |TimelineEntry {
                 event_created,
                 execution: e,
             }| {
                let outcome = e.last_error.clone().map(|m| view! { <p class="last-error">{m}</p> });
                let result = e.result.clone().map(|r| view! { <p class="result">{r}</p> });
                let (id, event_id) = (e.id.clone(), e.event_id.clone());
                view! {
                    <li class="entry" data-id=id data-event=event_id data-state=e.state.as_str()>
                        <div class="when"><format::Time at=Some(event_created)/></div>
                        <div class="what">
                            <span class=format!("state state-{}", e.state)>{e.state.as_str()}</span>
                            " "
                            <span class="type">{e.event_type.clone()}</span>
                            " "
                            <A href=format!("/executions/{}", e.id) attr:class="event">{e.event_id.clone()}</A>
                            {result}
                            {outcome}
                        </div>
                    </li>
                }
            },
        )
        .collect_view();
    view! { <ol class="timeline">{items}</ol> }.into_any()
}
