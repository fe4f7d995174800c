use leptos::prelude::*;
use leptos_router::components::A;

use super::format;
use crate::records::{
    CustomerRecord, DisputeRecord, NotificationRecord, PaymentFailureRecord, RecordRows, SubscriptionRecord,
};

/// A link to an object's timeline, or a dash.
#[component]
pub fn ObjectLink(id: Option<String>) -> impl IntoView {
    id.map(|id| {
        view! { <A href=format!("/objects/{}", crate::model::encode_component(&id))>{id.clone()}</A> }.into_any()
    })
    .unwrap_or_else(|| "—".into_any())
}

/// A table cell with its column's name, which narrow screens show beside the value.
macro_rules! cell {
    ($label:literal, $class:literal, $value:expr) => {
        view! { <td data-label=$label class=$class>{$value}</td> }
    };
}

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "—".into())
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// One kind of record as a table; every id links to the object's timeline.
#[component]
pub fn RecordTable(rows: RecordRows) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="empty">"No records match this filter."</p> }.into_any();
    }
    let (headers, body): (&[&str], AnyView) = match rows {
        RecordRows::Customers(rows) => (
            &[
                "Customer",
                "Email",
                "Name",
                "On hold",
                "Delinquent",
                "Deleted",
                "Mode",
                "Last event",
            ],
            rows.into_iter().map(customer).collect_view().into_any(),
        ),
        RecordRows::Subscriptions(rows) => (
            &[
                "Subscription",
                "Customer",
                "Status",
                "Price",
                "Quantity",
                "Period end",
                "Cancels at end",
                "Trial end",
                "Mode",
            ],
            rows.into_iter().map(subscription).collect_view().into_any(),
        ),
        RecordRows::PaymentFailures(rows) => (
            &[
                "Failure",
                "Customer",
                "Invoice",
                "Reason",
                "Code",
                "Message",
                "Amount",
                "Attempt",
                "Failed at",
            ],
            rows.into_iter().map(payment_failure).collect_view().into_any(),
        ),
        RecordRows::Notifications(rows) => (
            &[
                "#", "Kind", "Status", "Customer", "Email", "Amount", "Due", "Reason", "Queued", "Sent",
            ],
            rows.into_iter().map(notification).collect_view().into_any(),
        ),
        RecordRows::Disputes(rows) => (
            &[
                "Dispute",
                "Customer",
                "Charge",
                "Status",
                "Hold",
                "Outcome",
                "Reason",
                "Amount",
                "Evidence due",
            ],
            rows.into_iter().map(dispute).collect_view().into_any(),
        ),
    };
    let headers = headers
        .iter()
        .map(|h| view! { <th scope="col">{*h}</th> })
        .collect_view();
    view! {
        <table class="records collapsible">
            <thead><tr>{headers}</tr></thead>
            <tbody>{body}</tbody>
        </table>
    }
    .into_any()
}

fn customer(c: CustomerRecord) -> impl IntoView {
    view! {
        <tr class="record" data-id=c.id.clone() data-on-hold=c.on_hold.to_string()>
            {cell!("Customer", "id", view! { <ObjectLink id=Some(c.id.clone())/> })}
            {cell!("Email", "email", text(&c.email))}
            {cell!("Name", "name", text(&c.name))}
            {cell!("On hold", "on-hold", yes(c.on_hold))}
            {cell!("Delinquent", "delinquent", yes(c.delinquent))}
            {cell!("Deleted", "deleted", yes(c.deleted))}
            {cell!("Mode", "mode", format::livemode(c.livemode))}
            {cell!("Last event", "time", view! { <format::Time at=c.stripe_updated_at.clone()/> })}
        </tr>
    }
}

fn subscription(s: SubscriptionRecord) -> impl IntoView {
    view! {
        <tr class="record" data-id=s.id.clone()>
            {cell!("Subscription", "id", view! { <ObjectLink id=Some(s.id.clone())/> })}
            {cell!("Customer", "customer", view! { <ObjectLink id=Some(s.customer.clone())/> })}
            {cell!("Status", "status", s.status.clone())}
            {cell!("Price", "price", text(&s.price))}
            {cell!("Quantity", "quantity", s.quantity.map(|q| q.to_string()).unwrap_or_else(|| "—".into()))}
            {cell!("Period end", "time", view! { <format::Time at=s.current_period_end.clone()/> })}
            {cell!("Cancels at end", "cancel", yes(s.cancel_at_period_end))}
            {cell!("Trial end", "time", view! { <format::Time at=s.trial_end.clone()/> })}
            {cell!("Mode", "mode", format::livemode(s.livemode))}
        </tr>
    }
}

fn payment_failure(f: PaymentFailureRecord) -> impl IntoView {
    view! {
        <tr class="record" data-id=f.id.clone() data-reason=f.reason.clone()>
            {cell!("Failure", "id", view! { <ObjectLink id=Some(f.id.clone())/> })}
            {cell!("Customer", "customer", view! { <ObjectLink id=f.customer.clone()/> })}
            {cell!("Invoice", "invoice", view! { <ObjectLink id=f.invoice.clone()/> })}
            {cell!("Reason", "reason", f.reason.clone())}
            {cell!("Code", "code", text(&f.code))}
            {cell!("Message", "message", text(&f.message))}
            {cell!("Amount", "amount", format::amount(f.amount, f.currency.as_deref()))}
            {cell!("Attempt", "attempt", f.attempt_count.map(|n| n.to_string()).unwrap_or_else(|| "—".into()))}
            {cell!("Failed at", "time", view! { <format::Time at=Some(f.failed_at.clone())/> })}
        </tr>
    }
}

fn notification(n: NotificationRecord) -> impl IntoView {
    view! {
        <tr class="record" data-id=n.id.to_string() data-status=n.status.clone()>
            {cell!("#", "id", n.id)}
            {cell!("Kind", "kind", n.kind.clone())}
            {cell!("Status", "status", view! { <span class=format!("state notification-{}", n.status)>{n.status.clone()}</span> })}
            {cell!("Customer", "customer", view! { <ObjectLink id=n.customer.clone()/> })}
            {cell!("Email", "email", text(&n.email))}
            {cell!("Amount", "amount", format::amount(n.amount, n.currency.as_deref()))}
            {cell!("Due", "time", view! { <format::Time at=n.due_at.clone()/> })}
            {cell!("Reason", "reason", text(&n.reason))}
            {cell!("Queued", "time", view! { <format::Time at=Some(n.created_at.clone())/> })}
            {cell!("Sent", "time", view! { <format::Time at=n.sent_at.clone()/> })}
        </tr>
    }
}

fn dispute(d: DisputeRecord) -> impl IntoView {
    view! {
        <tr class="record" data-id=d.id.clone() data-hold=d.hold.to_string()>
            {cell!("Dispute", "id", view! { <ObjectLink id=Some(d.id.clone())/> })}
            {cell!("Customer", "customer", view! { <ObjectLink id=d.customer.clone()/> })}
            {cell!("Charge", "charge", view! { <ObjectLink id=d.charge.clone()/> })}
            {cell!("Status", "status", d.status.clone())}
            {cell!("Hold", "hold", if d.hold { "open" } else { "closed" })}
            {cell!("Outcome", "outcome", text(&d.outcome))}
            {cell!("Reason", "reason", text(&d.reason))}
            {cell!("Amount", "amount", format::amount(d.amount, d.currency.as_deref()))}
            {cell!("Evidence due", "time", view! { <format::Time at=d.evidence_due_by.clone()/> })}
        </tr>
    }
}
