//! The local records as the console and the REST API show them, and the filters over them.
//! Each kind has its own filter parameters; the page's URL and `GET /api/v1/records/{kind}`
//! use the same names. No SQL here: `src/store/records_read.rs` reads them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::{DEFAULT_PAGE_SIZE, Execution, MAX_PAGE_SIZE, check_filter_pair, encode_component, shown};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Customers,
    Subscriptions,
    PaymentFailures,
    Notifications,
    Disputes,
}

impl RecordKind {
    pub const ALL: [RecordKind; 5] = [
        RecordKind::Customers,
        RecordKind::Subscriptions,
        RecordKind::PaymentFailures,
        RecordKind::Notifications,
        RecordKind::Disputes,
    ];

    /// As written in URLs: `/records/{slug}`, `/api/v1/records/{slug}`.
    pub fn slug(self) -> &'static str {
        match self {
            RecordKind::Customers => "customers",
            RecordKind::Subscriptions => "subscriptions",
            RecordKind::PaymentFailures => "payment-failures",
            RecordKind::Notifications => "notifications",
            RecordKind::Disputes => "disputes",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            RecordKind::Customers => "Customers",
            RecordKind::Subscriptions => "Subscriptions",
            RecordKind::PaymentFailures => "Payment failures",
            RecordKind::Notifications => "Notifications",
            RecordKind::Disputes => "Disputes",
        }
    }

    /// The filter parameters this kind accepts (besides `cursor` and `limit`).
    pub fn parameters(self) -> &'static [&'static str] {
        match self {
            RecordKind::Customers => &["on_hold", "deleted", "delinquent", "q"],
            RecordKind::Subscriptions => &["status", "customer"],
            RecordKind::PaymentFailures => &["reason", "customer", "from", "to"],
            RecordKind::Notifications => &["kind", "status", "customer"],
            RecordKind::Disputes => &["state", "outcome", "customer"],
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

impl FromStr for RecordKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RecordKind::ALL.into_iter().find(|k| k.slug() == s).ok_or_else(|| {
            format!("unknown record kind `{s}` (customers, subscriptions, payment-failures, notifications or disputes)")
        })
    }
}

/// Stripe's subscription statuses.
pub const SUBSCRIPTION_STATUSES: [&str; 8] = [
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
];
/// The normalised decline reasons the payment handler records.
pub const DECLINE_REASONS: [&str; 6] = [
    "insufficient_funds",
    "expired_card",
    "card_declined",
    "bank_restriction",
    "authentication_required",
    "other",
];
pub const NOTIFICATION_KINDS: [&str; 4] = ["payment_failed", "upcoming_charge", "invoice_email", "trial_ending"];
pub const NOTIFICATION_STATUSES: [&str; 2] = ["pending", "sent"];
pub const DISPUTE_STATES: [&str; 2] = ["open", "closed"];
/// A closed dispute's outcome: Stripe's final dispute statuses.
pub const DISPUTE_OUTCOMES: [&str; 4] = ["won", "lost", "warning_closed", "prevented"];

/// A filter over one kind of record. Fields a kind does not accept stay empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordFilter {
    pub kind: RecordKind,
    pub on_hold: Option<bool>,
    pub deleted: Option<bool>,
    pub delinquent: Option<bool>,
    /// Subscriptions: Stripe's status. Notifications: `pending` or `sent`.
    pub status: Option<String>,
    pub reason: Option<String>,
    /// Notifications: what the message is about.
    pub notification_kind: Option<String>,
    /// Disputes: `open` (the hold is on) or `closed`.
    pub state: Option<String>,
    pub outcome: Option<String>,
    pub customer: Option<String>,
    /// Customers: an id or an email.
    pub q: Option<String>,
    /// Payment failures: failed at or after (RFC 3339, or `YYYY-MM-DDTHH:MM` in UTC).
    pub from: Option<String>,
    pub to: Option<String>,
    /// Opaque: where the previous page ended.
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    /// The notification outbox reads oldest first (the order to send in); pages read newest first.
    #[serde(default)]
    pub oldest_first: bool,
}

impl RecordFilter {
    pub fn new(kind: RecordKind) -> Self {
        RecordFilter {
            kind,
            on_hold: None,
            deleted: None,
            delinquent: None,
            status: None,
            reason: None,
            notification_kind: None,
            state: None,
            outcome: None,
            customer: None,
            q: None,
            from: None,
            to: None,
            cursor: None,
            limit: None,
            oldest_first: false,
        }
    }

    /// Reads a filter from query pairs; a parameter this kind does not take, or a value it
    /// does not know, is an error, and so are more pairs or longer values than any filter may
    /// have ([`check_filter_pair`], the executions' rule).
    pub fn from_pairs<'a>(
        kind: RecordKind,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut f = RecordFilter::new(kind);
        for (index, (key, value)) in pairs.into_iter().enumerate() {
            let value = value.trim();
            check_filter_pair(index, key, value)?;
            if !kind.parameters().contains(&key) && key != "cursor" && key != "limit" {
                return Err(format!(
                    "unknown filter parameter `{}` for {kind} (one of {}, cursor, limit)",
                    shown(key),
                    kind.parameters().join(", ")
                ));
            }
            let text = (!value.is_empty()).then(|| value.to_string());
            match key {
                "on_hold" => f.on_hold = flag(key, value)?,
                "deleted" => f.deleted = flag(key, value)?,
                "delinquent" => f.delinquent = flag(key, value)?,
                "status" if kind == RecordKind::Subscriptions => f.status = one_of(key, value, &SUBSCRIPTION_STATUSES)?,
                "status" => f.status = one_of(key, value, &NOTIFICATION_STATUSES)?,
                "reason" => f.reason = one_of(key, value, &DECLINE_REASONS)?,
                "kind" => f.notification_kind = one_of(key, value, &NOTIFICATION_KINDS)?,
                "state" => f.state = one_of(key, value, &DISPUTE_STATES)?,
                "outcome" => f.outcome = one_of(key, value, &DISPUTE_OUTCOMES)?,
                "customer" => f.customer = text,
                "q" => f.q = text,
                "from" => f.from = text,
                "to" => f.to = text,
                "cursor" => f.cursor = text,
                "limit" if value.is_empty() => {}
                "limit" => {
                    let n: u32 = value.parse().map_err(|_| format!("invalid limit `{}`", shown(value)))?;
                    if n == 0 || n > MAX_PAGE_SIZE {
                        return Err(format!("limit must be between 1 and {MAX_PAGE_SIZE}"));
                    }
                    f.limit = Some(n);
                }
                _ => unreachable!("checked against the kind's parameters"),
            }
        }
        Ok(f)
    }

    /// The filter as query pairs (without the cursor), in the URL's names.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let flags = [
            ("on_hold", self.on_hold),
            ("deleted", self.deleted),
            ("delinquent", self.delinquent),
        ];
        let texts = [
            ("status", &self.status),
            ("reason", &self.reason),
            ("kind", &self.notification_kind),
            ("state", &self.state),
            ("outcome", &self.outcome),
            ("customer", &self.customer),
            ("q", &self.q),
            ("from", &self.from),
            ("to", &self.to),
        ];
        let mut out: Vec<(&'static str, String)> = flags
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v.to_string())))
            .collect();
        out.extend(texts.into_iter().filter_map(|(k, v)| v.clone().map(|v| (k, v))));
        if let Some(n) = self.limit {
            out.push(("limit", n.to_string()));
        }
        out
    }

    /// `/records/{kind}` with this filter and the given cursor.
    pub fn href(&self, cursor: Option<&str>) -> String {
        let mut pairs = self.to_pairs();
        if let Some(c) = cursor {
            pairs.push(("cursor", c.to_string()));
        }
        let qs = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_component(v)))
            .collect::<Vec<_>>()
            .join("&");
        let path = format!("/records/{}", self.kind.slug());
        if qs.is_empty() { path } else { format!("{path}?{qs}") }
    }

    pub fn page_size(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_PAGE_SIZE)
    }
}

fn flag(key: &str, value: &str) -> Result<Option<bool>, String> {
    match value {
        "true" => Ok(Some(true)),
        "false" => Ok(Some(false)),
        "" | "all" => Ok(None),
        other => Err(format!("invalid {key} `{}` (true, false or all)", shown(other))),
    }
}

fn one_of(key: &str, value: &str, allowed: &[&str]) -> Result<Option<String>, String> {
    if value.is_empty() || value == "all" {
        return Ok(None);
    }
    if allowed.contains(&value) {
        Ok(Some(value.to_string()))
    } else {
        Err(format!(
            "invalid {key} `{}` (one of {})",
            shown(value),
            allowed.join(", ")
        ))
    }
}

/// Times are RFC 3339 (UTC); Stripe's own times (`*_at` copied from Stripe) are converted too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRecord {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub delinquent: bool,
    pub deleted: bool,
    pub on_hold: bool,
    pub livemode: bool,
    /// The `created` of the last event applied; none while only known from a dispute.
    pub stripe_updated_at: Option<String>,
    pub last_event_id: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub id: String,
    pub customer: String,
    pub status: String,
    pub price: Option<String>,
    pub quantity: Option<i64>,
    pub current_period_end: Option<String>,
    pub cancel_at_period_end: bool,
    pub trial_end: Option<String>,
    pub livemode: bool,
    pub stripe_updated_at: Option<String>,
    pub last_event_id: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentFailureRecord {
    pub id: String,
    pub customer: Option<String>,
    pub invoice: Option<String>,
    pub payment_intent: Option<String>,
    pub charge: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub reason: String,
    pub code: Option<String>,
    pub message: Option<String>,
    pub attempt_count: Option<i64>,
    pub next_payment_attempt: Option<String>,
    pub failed_at: String,
    pub livemode: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationRecord {
    pub id: i64,
    pub kind: String,
    pub event_id: String,
    pub customer: Option<String>,
    pub email: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub due_at: Option<String>,
    pub url: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub status: String,
    pub created_at: String,
    pub sent_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisputeRecord {
    pub id: String,
    pub charge: Option<String>,
    pub payment_intent: Option<String>,
    pub customer: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub reason: Option<String>,
    pub status: String,
    pub evidence_due_by: Option<String>,
    pub hold: bool,
    pub outcome: Option<String>,
    pub funds_withdrawn: bool,
    pub funds_reinstated: bool,
    pub livemode: bool,
    pub stripe_updated_at: Option<String>,
    pub last_event_id: Option<String>,
    pub updated_at: String,
}

/// The rows of one page, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum RecordRows {
    Customers(Vec<CustomerRecord>),
    Subscriptions(Vec<SubscriptionRecord>),
    PaymentFailures(Vec<PaymentFailureRecord>),
    Notifications(Vec<NotificationRecord>),
    Disputes(Vec<DisputeRecord>),
}

impl RecordRows {
    pub fn len(&self) -> usize {
        match self {
            RecordRows::Customers(r) => r.len(),
            RecordRows::Subscriptions(r) => r.len(),
            RecordRows::PaymentFailures(r) => r.len(),
            RecordRows::Notifications(r) => r.len(),
            RecordRows::Disputes(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One page of records, in the filter's order, and where the next begins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordPage {
    pub rows: RecordRows,
    pub next_cursor: Option<String>,
}

/// An object's current local record, whichever table holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "record", rename_all = "snake_case")]
pub enum ObjectRecord {
    Customer(CustomerRecord),
    Subscription(SubscriptionRecord),
    PaymentFailure(PaymentFailureRecord),
    Dispute(DisputeRecord),
}

/// One execution in an object's story, with its event's `created` (the order they are shown in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub event_created: String,
    pub execution: Execution,
}

/// Everything that happened to one Stripe object, and what Deferral keeps about it now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectTimeline {
    pub id: String,
    /// In the order of the events' `created`, then arrival.
    pub entries: Vec<TimelineEntry>,
    /// More executions exist than are shown.
    pub truncated: bool,
    pub record: Option<ObjectRecord>,
    /// Records that name this object (a customer's subscriptions, failures, disputes,
    /// notifications) or that it names (a subscription's customer). Only non-empty lists.
    pub related: Vec<RecordRows>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_takes_only_its_parameters() {
        let f = RecordFilter::from_pairs(RecordKind::Customers, [("on_hold", "true"), ("deleted", "")]).unwrap();
        assert_eq!(f.on_hold, Some(true));
        assert_eq!(f.deleted, None);
        assert!(RecordFilter::from_pairs(RecordKind::Customers, [("reason", "other")]).is_err());
        assert!(RecordFilter::from_pairs(RecordKind::Customers, [("on_hold", "yes")]).is_err());
        assert!(RecordFilter::from_pairs(RecordKind::Subscriptions, [("status", "pending")]).is_err());
        assert!(RecordFilter::from_pairs(RecordKind::Notifications, [("status", "pending")]).is_ok());
        assert!(RecordFilter::from_pairs(RecordKind::Disputes, [("limit", "0")]).is_err());
        assert!(RecordFilter::from_pairs(RecordKind::PaymentFailures, [("reason", "nope")]).is_err());
    }

    #[test]
    fn record_filters_have_the_executions_caps() {
        use crate::model::{MAX_FILTER_PAIRS, MAX_FILTER_VALUE_LEN};
        let long = "x".repeat(MAX_FILTER_VALUE_LEN + 1);
        let err = RecordFilter::from_pairs(RecordKind::Customers, [("q", long.as_str())]).unwrap_err();
        assert!(err.contains("longer than"), "{err}");
        let many = vec![("q", "a"); MAX_FILTER_PAIRS + 1];
        let err = RecordFilter::from_pairs(RecordKind::Customers, many).unwrap_err();
        assert!(err.contains("too many filter parameters"), "{err}");
        let key = "k".repeat(10_000);
        assert!(
            RecordFilter::from_pairs(RecordKind::Customers, [(key.as_str(), "1")])
                .unwrap_err()
                .len()
                < 300
        );
    }

    #[test]
    fn filter_round_trips_through_the_href() {
        let f = RecordFilter::from_pairs(
            RecordKind::PaymentFailures,
            [("reason", "expired_card"), ("customer", "cus 1&2")],
        )
        .unwrap();
        assert_eq!(
            f.href(Some("c9")),
            "/records/payment-failures?reason=expired_card&customer=cus%201%262&cursor=c9"
        );
        assert_eq!(
            "payment-failures".parse::<RecordKind>(),
            Ok(RecordKind::PaymentFailures)
        );
    }
}
