use leptos::prelude::*;
use leptos_router::components::{A, Form};

use crate::records::{
    DECLINE_REASONS, DISPUTE_OUTCOMES, DISPUTE_STATES, NOTIFICATION_KINDS, NOTIFICATION_STATUSES, RecordFilter,
    RecordKind, SUBSCRIPTION_STATUSES,
};

/// A `<select>` whose first option, "all", leaves the parameter out.
fn choice(label: &'static str, name: &'static str, options: &[&'static str], selected: Option<&str>) -> AnyView {
    let options = options
        .iter()
        .map(|o| view! { <option value=*o selected=selected == Some(*o)>{*o}</option> })
        .collect_view();
    view! {
        <label>
            {label} " "
            <select name=name>
                <option value="" selected=selected.is_none()>"all"</option>
                {options}
            </select>
        </label>
    }
    .into_any()
}

fn flag(label: &'static str, name: &'static str, value: Option<bool>) -> AnyView {
    let shown = value.map(|v| if v { "true" } else { "false" });
    let (yes, no) = (format!("{label}: yes"), format!("{label}: no"));
    view! {
        <label>
            {label} " "
            <select name=name>
                <option value="" selected=shown.is_none()>"all"</option>
                <option value="true" selected=shown == Some("true") aria-label=yes>"yes"</option>
                <option value="false" selected=shown == Some("false") aria-label=no>"no"</option>
            </select>
        </label>
    }
    .into_any()
}

fn text(label: &'static str, name: &'static str, value: &Option<String>, placeholder: &'static str) -> AnyView {
    view! {
        <label>
            {label} " "
            <input type="search" name=name value=value.clone().unwrap_or_default() placeholder=placeholder/>
        </label>
    }
    .into_any()
}

fn datetime(label: &'static str, name: &'static str, value: &Option<String>) -> AnyView {
    let value = value
        .as_deref()
        .map(|v| v.get(..16).unwrap_or(v).to_string())
        .unwrap_or_default();
    view! { <label>{label} " " <input type="datetime-local" name=name value=value/></label> }.into_any()
}

/// The records filter as a GET form to the page itself: the result is a bookmarkable URL, and
/// without JavaScript it is a plain form submission.
#[component]
pub fn RecordFilterForm(filter: RecordFilter) -> impl IntoView {
    let f = &filter;
    let fields: Vec<AnyView> = match f.kind {
        RecordKind::Customers => vec![
            flag("On hold", "on_hold", f.on_hold),
            flag("Delinquent", "delinquent", f.delinquent),
            flag("Deleted", "deleted", f.deleted),
            text("Search", "q", &f.q, "customer id or email"),
        ],
        RecordKind::Subscriptions => vec![
            choice("Status", "status", &SUBSCRIPTION_STATUSES, f.status.as_deref()),
            text("Customer", "customer", &f.customer, "cus_…"),
        ],
        RecordKind::PaymentFailures => vec![
            choice("Reason", "reason", &DECLINE_REASONS, f.reason.as_deref()),
            text("Customer", "customer", &f.customer, "cus_…"),
            datetime("Failed from (UTC)", "from", &f.from),
            datetime("to", "to", &f.to),
        ],
        RecordKind::Notifications => vec![
            choice("Kind", "kind", &NOTIFICATION_KINDS, f.notification_kind.as_deref()),
            choice("Status", "status", &NOTIFICATION_STATUSES, f.status.as_deref()),
            text("Customer", "customer", &f.customer, "cus_…"),
        ],
        RecordKind::Disputes => vec![
            choice("State", "state", &DISPUTE_STATES, f.state.as_deref()),
            choice("Outcome", "outcome", &DISPUTE_OUTCOMES, f.outcome.as_deref()),
            text("Customer", "customer", &f.customer, "cus_…"),
        ],
    };
    let action = format!("/records/{}", f.kind.slug());
    let label = format!("Filter {}", f.kind.title().to_lowercase());
    view! {
        <Form method="GET" action=action.clone() attr:class="filters" attr:aria-label=label>
            {fields}
            <button type="submit" class="apply">"Apply"</button>
            <A href=action attr:class="clear">"Clear"</A>
        </Form>
    }
}
