use leptos::prelude::*;

use super::format;
use crate::model::Attempt;

/// The timeline of finished attempts.
#[component]
pub fn Attempts(attempts: Vec<Attempt>) -> impl IntoView {
    if attempts.is_empty() {
        return view! { <p class="empty">"No attempt has finished yet."</p> }.into_any();
    }
    let rows = attempts
        .into_iter()
        .map(|a| {
            view! {
                <tr class=format!("attempt outcome-{}", a.outcome)>
                    <td>{a.number}</td>
                    <td>{format::time(&a.started_at)}</td>
                    <td>{format::duration(Some(a.duration_ms))}</td>
                    <td class="outcome">{a.outcome.clone()}</td>
                    <td>{a.error_kind.clone().unwrap_or_default()}</td>
                    <td class="message">{a.error_message.clone().unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="attempts">
            <thead>
                <tr>
                    <th>"#"</th>
                    <th>"Started"</th>
                    <th>"Duration"</th>
                    <th>"Outcome"</th>
                    <th>"Error kind"</th>
                    <th>"Message"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
