use leptos::prelude::*;

use crate::alerts::{AlertMessage, Alerts};
use crate::components::{error_view::ErrorView, format};
use crate::server::get_alerts;

/// Failure alerts: the messages composed (one per final failure, digests, recoveries) and
/// each one's deliveries to the receivers of `DEFERRAL_ALERT_WEBHOOK_URL`.
#[component]
pub fn AlertsPage() -> impl IntoView {
    let alerts = Resource::new(|| (), |_| get_alerts());
    let body = move || {
        Suspend::new(async move {
            match alerts.await {
                Ok(alerts) => view! { <AlertsView alerts/> }.into_any(),
                Err(error) => view! { <ErrorView error/> }.into_any(),
            }
        })
    };
    view! {
        <section class="alerts">
            <h1>"Alerts"</h1>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>{body}</Transition>
        </section>
    }
}

#[component]
fn AlertsView(alerts: Alerts) -> impl IntoView {
    let configured = if alerts.configured {
        "Final failures are posted to the receivers of DEFERRAL_ALERT_WEBHOOK_URL.".to_string()
    } else {
        "No receiver: set DEFERRAL_ALERT_WEBHOOK_URL to post these messages to a chat.".to_string()
    };
    let pending = (alerts.pending_failures > 0).then(|| {
        view! { <p class="pending-failures">{format!("{} failures wait for the digest window.", alerts.pending_failures)}</p> }
    });
    let rows = alerts.messages.into_iter().map(message_row).collect_view();
    view! {
        <p class="alerts-configured">{configured}</p>
        {pending}
        <table class="alert-messages">
            <thead><tr><th>"Composed"</th><th>"Kind"</th><th>"Type"</th><th>"Failures"</th><th>"Message"</th><th>"Deliveries"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

fn message_row(m: AlertMessage) -> impl IntoView {
    let deliveries = m
        .deliveries
        .into_iter()
        .map(|d| {
            let when = match (&d.sent_at, &d.next_attempt_at) {
                (Some(at), _) => format!("sent {}", format::time(at)),
                (None, Some(next)) => format!("next try {}", format::time(next)),
                _ => String::new(),
            };
            view! {
                <li class=format!("delivery delivery-{}", d.state)>
                    {format!("{}: {} after {} attempt{}, {when}", d.receiver, d.state, d.attempts, if d.attempts == 1 { "" } else { "s" })}
                    {d.last_error.map(|e| view! { <span class="last-error">{format!(" ({e})")}</span> })}
                </li>
            }
        })
        .collect_view();
    view! {
        <tr data-kind=m.kind.clone()>
            <td>{format::time(&m.created_at)}</td>
            <td>{m.kind.clone()}</td>
            <td>{m.event_type.clone()}</td>
            <td>{m.failures}</td>
            <td class="summary">{m.summary.clone()}</td>
            <td><ul class="deliveries">{deliveries}</ul></td>
        </tr>
    }
}
