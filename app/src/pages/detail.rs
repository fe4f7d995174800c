use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use crate::components::{
    action_buttons::ActionButtons,
    attempts::Attempts,
    error_view::{ActionError, ErrorView},
    format,
    notice::Notice,
    record_table::ObjectLink,
};
use crate::event_types::{Pause, Waiting};
use crate::model::State;
use crate::server::{RunAction, get_execution};
use crate::view::ExecutionDetail;

/// One execution: metadata, actions, the attempts, the result and the event payload.
#[component]
pub fn DetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let action = ServerAction::<RunAction>::new();
    let detail = Resource::new(move || (id.get(), action.version().get()), |(id, _)| get_execution(id));
    let body = move || {
        Suspend::new(async move {
            match detail.await {
                Ok(detail) => view! { <DetailView detail action/> }.into_any(),
                Err(error) => view! { <ErrorView error/> }.into_any(),
            }
        })
    };
    view! {
        <section class="detail">
            <p class="back"><A href="/">"← Executions"</A></p>
            <Notice/>
            // A refused action (or any error) stays on this page and says why.
            <ActionError action/>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>{body}</Transition>
        </section>
    }
}

#[component]
fn DetailView(detail: ExecutionDetail, action: ServerAction<RunAction>) -> impl IntoView {
    let ExecutionDetail {
        execution: e,
        attempts,
        payload,
        reruns,
        waiting,
    } = detail;
    let next_run = (e.state == State::Scheduled).then(|| format::opt_time(&e.next_run_at));
    let rerun_of = e
        .rerun_of
        .clone()
        .map(|id| view! { <dt>"Re-run of"</dt><dd><A href=format!("/executions/{id}")>{id.clone()}</A></dd> });
    let reruns = (!reruns.is_empty()).then(|| {
        let links = reruns
            .into_iter()
            .map(|id| view! { <li><A href=format!("/executions/{id}")>{id.clone()}</A></li> })
            .collect_view();
        view! { <dt>"Re-runs"</dt><dd><ul class="reruns">{links}</ul></dd> }
    });
    view! {
        <div class="toolbar">
            <h1>"Execution " <code>{e.id.clone()}</code></h1>
            <ActionButtons execution=e.clone() action/>
        </div>
        {waiting.map(|w| view! { <WaitingNote waiting=w/> })}
        <dl class="meta">
            <dt>"Status"</dt>
            <dd><span class=format!("state state-{}", e.state) id="state">{e.state.as_str()}</span></dd>
            {next_run.map(|t| view! { <dt>"Next run"</dt><dd class="next-run">{t}</dd> })}
            <dt>"Event"</dt><dd class="event-id">{e.event_id.clone()}</dd>
            <dt>"Type"</dt><dd>{e.event_type.clone()}</dd>
            <dt>"Mode"</dt><dd>{format::livemode(e.livemode)}</dd>
            <dt>"API version"</dt><dd>{e.api_version.clone().unwrap_or_else(|| "—".into())}</dd>
            <dt>"Account"</dt><dd class="account">{e.account.clone().unwrap_or_else(|| "—".into())}</dd>
            <dt>"Object"</dt><dd class="object"><ObjectLink id=e.object_id.clone()/></dd>
            <dt>"Attempts"</dt><dd>{format!("{} of {}", e.attempts, e.max_attempts)}</dd>
            <dt>"Created"</dt><dd>{format::time(&e.created_at)}</dd>
            <dt>"Scheduled for"</dt><dd>{format::time(&e.scheduled_at)}</dd>
            <dt>"Started"</dt><dd>{format::opt_time(&e.started_at)}</dd>
            <dt>"Finished"</dt><dd>{format::opt_time(&e.finished_at)}</dd>
            <dt>"Origin"</dt><dd class="origin">{e.origin.as_str()}</dd>
            <dt>"Source"</dt><dd class="source">{e.source.clone().unwrap_or_else(|| "—".into())}</dd>
            {rerun_of}
            {reruns}
        </dl>
        {e.last_error.clone().map(|m| view! { <p class="last-error"><strong>"Last error: "</strong>{m}</p> })}
        <h2>"Result"</h2>
        <pre class="result">{e.result.clone().unwrap_or_else(|| "—".into())}</pre>
        <h2>"Attempts"</h2>
        <Attempts attempts/>
        <h2>"Event payload"</h2>
        // Text, never markup: a payload containing HTML or a script shows as written.
        <pre class="payload">{payload}</pre>
    }
}

/// Why a due execution does not run: its type is paused, or it waits behind an earlier
/// execution of the same Stripe object (which may itself be held).
#[component]
fn WaitingNote(waiting: Waiting) -> impl IntoView {
    let paused = |p: &Pause| {
        format!(
            "paused as {} by {} since {}",
            p.pattern,
            p.paused_by,
            format::time(&p.paused_at)
        )
    };
    let text = match waiting {
        Waiting::Paused(p) => view! {
            <strong>"Held: "</strong>
            {format!("its event type is {}. It runs when resumed. ", paused(&p))}
            <A href="/event-types">"Event types"</A>
        }
        .into_any(),
        Waiting::BehindObject {
            execution_id,
            event_type,
            paused: held,
        } => {
            let held = held
                .as_ref()
                .map(|p| format!(", which is held: {event_type} is {}", paused(p)))
                .unwrap_or_default();
            view! {
                <strong>"Waiting: "</strong>
                "an earlier execution of the same object comes first (per-object order): "
                <A href=format!("/executions/{execution_id}")>{execution_id}</A>
                {held}
                "."
            }
            .into_any()
        }
    };
    view! { <p class="waiting" role="status">{text}</p> }
}
