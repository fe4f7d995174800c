//! The records as operators and applications read them: filtered, paged lists of each kind
//! (the console's records pages and `GET /api/v1/records/{kind}`), the notification outbox,
//! and what the object timeline shows (an object's executions and its current record).
//!
//! Pages are keyset-paged on each table's order column (migration 0012 indexes them) and the
//! id, newest first: a deep page costs what the first one does.

use domain::records::{
    CustomerRecord, DisputeRecord, NotificationRecord, ObjectRecord, PaymentFailureRecord, RecordFilter, RecordKind,
    RecordPage, RecordRows, SubscriptionRecord,
};

use super::filter::{Arg, bind_args, parse_time_bound};
use super::rows::{COLUMNS, ExecutionRow, rfc3339};
use super::{Result, Store, StoreError, on_db};

/// Stripe's times are unix seconds; the views show RFC 3339 like every other time.
fn stripe_time(secs: i64) -> String {
    rfc3339(secs.saturating_mul(1000))
}

/// `stripe_updated_at` is 0 for a customer known only from a dispute: no event applied yet.
fn stripe_version(secs: i64) -> Option<String> {
    (secs > 0).then(|| stripe_time(secs))
}

#[derive(sqlx::FromRow)]
struct CustomerRow {
    id: String,
    email: Option<String>,
    name: Option<String>,
    delinquent: bool,
    deleted: bool,
    on_hold: bool,
    livemode: bool,
    stripe_updated_at: i64,
    last_event_id: Option<String>,
    updated_at: i64,
}

impl From<CustomerRow> for CustomerRecord {
    fn from(r: CustomerRow) -> Self {
        CustomerRecord {
            id: r.id,
            email: r.email,
            name: r.name,
            delinquent: r.delinquent,
            deleted: r.deleted,
            on_hold: r.on_hold,
            livemode: r.livemode,
            stripe_updated_at: stripe_version(r.stripe_updated_at),
            last_event_id: r.last_event_id,
            updated_at: rfc3339(r.updated_at),
        }
    }
}

#[derive(sqlx::FromRow)]
struct SubscriptionRow {
    id: String,
    customer: String,
    status: String,
    price: Option<String>,
    quantity: Option<i64>,
    current_period_end: Option<i64>,
    cancel_at_period_end: bool,
    trial_end: Option<i64>,
    livemode: bool,
    stripe_updated_at: i64,
    last_event_id: Option<String>,
    updated_at: i64,
}

impl From<SubscriptionRow> for SubscriptionRecord {
    fn from(r: SubscriptionRow) -> Self {
        SubscriptionRecord {
            id: r.id,
            customer: r.customer,
            status: r.status,
            price: r.price,
            quantity: r.quantity,
            current_period_end: r.current_period_end.map(stripe_time),
            cancel_at_period_end: r.cancel_at_period_end,
            trial_end: r.trial_end.map(stripe_time),
            livemode: r.livemode,
            stripe_updated_at: stripe_version(r.stripe_updated_at),
            last_event_id: r.last_event_id,
            updated_at: rfc3339(r.updated_at),
        }
    }
}

#[derive(sqlx::FromRow)]
struct PaymentFailureRow {
    id: String,
    customer: Option<String>,
    invoice: Option<String>,
    payment_intent: Option<String>,
    charge: Option<String>,
    amount: Option<i64>,
    currency: Option<String>,
    reason: String,
    code: Option<String>,
    message: Option<String>,
    attempt_count: Option<i64>,
    next_payment_attempt: Option<i64>,
    failed_at: i64,
    livemode: bool,
}

impl From<PaymentFailureRow> for PaymentFailureRecord {
    fn from(r: PaymentFailureRow) -> Self {
        PaymentFailureRecord {
            id: r.id,
            customer: r.customer,
            invoice: r.invoice,
            payment_intent: r.payment_intent,
            charge: r.charge,
            amount: r.amount,
            currency: r.currency,
            reason: r.reason,
            code: r.code,
            message: r.message,
            attempt_count: r.attempt_count,
            next_payment_attempt: r.next_payment_attempt.map(stripe_time),
            failed_at: stripe_time(r.failed_at),
            livemode: r.livemode,
        }
    }
}

#[derive(sqlx::FromRow)]
struct NotificationRow {
    id: i64,
    kind: String,
    event_id: String,
    customer: Option<String>,
    email: Option<String>,
    amount: Option<i64>,
    currency: Option<String>,
    due_at: Option<i64>,
    url: Option<String>,
    reason: Option<String>,
    message: Option<String>,
    status: String,
    created_at: i64,
    sent_at: Option<i64>,
}

impl From<NotificationRow> for NotificationRecord {
    fn from(r: NotificationRow) -> Self {
        NotificationRecord {
            id: r.id,
            kind: r.kind,
            event_id: r.event_id,
            customer: r.customer,
            email: r.email,
            amount: r.amount,
            currency: r.currency,
            due_at: r.due_at.map(stripe_time),
            url: r.url,
            reason: r.reason,
            message: r.message,
            status: r.status,
            created_at: rfc3339(r.created_at),
            sent_at: r.sent_at.map(rfc3339),
        }
    }
}

#[derive(sqlx::FromRow)]
struct DisputeRow {
    id: String,
    charge: Option<String>,
    payment_intent: Option<String>,
    customer: Option<String>,
    amount: Option<i64>,
    currency: Option<String>,
    reason: Option<String>,
    status: String,
    evidence_due_by: Option<i64>,
    hold: bool,
    outcome: Option<String>,
    funds_withdrawn: bool,
    funds_reinstated: bool,
    livemode: bool,
    stripe_updated_at: i64,
    last_event_id: Option<String>,
    updated_at: i64,
}

impl From<DisputeRow> for DisputeRecord {
    fn from(r: DisputeRow) -> Self {
        DisputeRecord {
            id: r.id,
            charge: r.charge,
            payment_intent: r.payment_intent,
            customer: r.customer,
            amount: r.amount,
            currency: r.currency,
            reason: r.reason,
            status: r.status,
            evidence_due_by: r.evidence_due_by.map(stripe_time),
            hold: r.hold,
            outcome: r.outcome,
            funds_withdrawn: r.funds_withdrawn,
            funds_reinstated: r.funds_reinstated,
            livemode: r.livemode,
            stripe_updated_at: stripe_version(r.stripe_updated_at),
            last_event_id: r.last_event_id,
            updated_at: rfc3339(r.updated_at),
        }
    }
}

/// Where each kind lives: its table, columns, and the column its pages are ordered by.
struct Table {
    name: &'static str,
    columns: &'static str,
    /// Newest first by this column, then by id.
    order: &'static str,
}

fn table(kind: RecordKind) -> Table {
    match kind {
        RecordKind::Customers => Table {
            name: "customers",
            columns: "id, email, name, delinquent, deleted, on_hold, livemode, stripe_updated_at, last_event_id, updated_at",
            order: "updated_at",
        },
        RecordKind::Subscriptions => Table {
            name: "subscriptions",
            columns: "id, customer, status, price, quantity, current_period_end, cancel_at_period_end, trial_end, livemode, stripe_updated_at, last_event_id, updated_at",
            order: "updated_at",
        },
        RecordKind::PaymentFailures => Table {
            name: "payment_failures",
            columns: "id, customer, invoice, payment_intent, charge, amount, currency, reason, code, message, attempt_count, next_payment_attempt, failed_at, livemode",
            order: "failed_at",
        },
        // Ids grow with arrival: the id alone orders them.
        RecordKind::Notifications => Table {
            name: "notifications",
            columns: "id, kind, event_id, customer, email, amount, currency, due_at, url, reason, message, status, created_at, sent_at",
            order: "id",
        },
        RecordKind::Disputes => Table {
            name: "disputes",
            columns: "id, charge, payment_intent, customer, amount, currency, reason, status, evidence_due_by, hold, outcome, funds_withdrawn, funds_reinstated, livemode, stripe_updated_at, last_event_id, updated_at",
            order: "updated_at",
        },
    }
}

/// A page boundary: the order column's value and the id of the last row shown.
#[derive(Debug, PartialEq)]
enum Boundary {
    /// Notifications: the id is the order.
    Id(i64),
    Key(i64, String),
}

impl Boundary {
    fn encode(&self) -> String {
        match self {
            Boundary::Id(id) => id.to_string(),
            Boundary::Key(at, id) => format!("{at}.{id}"),
        }
    }

    fn decode(kind: RecordKind, s: &str) -> Option<Boundary> {
        if kind == RecordKind::Notifications {
            return s.parse().ok().map(Boundary::Id);
        }
        let (at, id) = s.split_once('.')?;
        Some(Boundary::Key(at.parse().ok()?, id.to_string()))
    }
}

fn invalid(message: String) -> StoreError {
    StoreError::Db(sqlx::Error::Protocol(message))
}

/// The WHERE clause of a filter and its arguments, in placeholder order. Boolean filters are
/// written as literals so that partial indexes (`WHERE on_hold`, `WHERE hold`) can serve them.
fn filter_sql(f: &RecordFilter) -> Result<(String, Vec<Arg>)> {
    let mut clauses: Vec<String> = vec!["1 = 1".into()];
    let mut args: Vec<Arg> = Vec::new();
    let literal = |column: &str, on: bool| {
        if on {
            column.to_string()
        } else {
            format!("NOT {column}")
        }
    };
    for (column, value) in [
        ("on_hold", f.on_hold),
        ("deleted", f.deleted),
        ("delinquent", f.delinquent),
    ] {
        clauses.extend(value.map(|v| literal(column, v)));
    }
    if let Some(state) = &f.state {
        clauses.push(literal("hold", state == "open"));
    }
    let mut text = |column: &str, value: &Option<String>, clauses: &mut Vec<String>| {
        if let Some(v) = value {
            args.push(Arg::Text(v.clone()));
            clauses.push(format!("{column} = ${}", args.len()));
        }
    };
    text("status", &f.status, &mut clauses);
    text("reason", &f.reason, &mut clauses);
    text("kind", &f.notification_kind, &mut clauses);
    text("outcome", &f.outcome, &mut clauses);
    text("customer", &f.customer, &mut clauses);
    if let Some(q) = &f.q {
        args.push(Arg::Text(q.clone()));
        let i = args.len();
        clauses.push(format!("(id = ${i} OR email = ${i})"));
    }
    // Payment failures keep Stripe's seconds.
    for (bound, op) in [(&f.from, ">="), (&f.to, "<")] {
        if let Some(v) = bound {
            let ms = parse_time_bound(v).ok_or_else(|| invalid(format!("invalid time `{v}`")))?;
            args.push(Arg::Int(ms.div_euclid(1000)));
            clauses.push(format!("failed_at {op} ${}", args.len()));
        }
    }
    let table = table(f.kind);
    match f.cursor.as_deref().map(|c| Boundary::decode(f.kind, c)) {
        None => {}
        Some(None) => return Err(invalid("invalid cursor".into())),
        Some(Some(Boundary::Id(id))) => {
            args.push(Arg::Int(id));
            let op = if f.oldest_first { ">" } else { "<" };
            clauses.push(format!("id {op} ${}", args.len()));
        }
        Some(Some(Boundary::Key(at, id))) => {
            args.push(Arg::Int(at));
            args.push(Arg::Text(id));
            let (a, b, order) = (args.len() - 1, args.len(), table.order);
            clauses.push(format!("({order} < ${a} OR ({order} = ${a} AND id < ${b}))"));
        }
    }
    Ok((clauses.join(" AND "), args))
}

/// Checks what the store would refuse deep down, as a message for the caller. A filter that
/// arrives whole (the console's server function takes it as JSON, not from the URL) is held to
/// the URL's rules too: only its kind's parameters, known values, a bounded page.
pub fn check_record_filter(f: &RecordFilter) -> std::result::Result<(), String> {
    let pairs = f.to_pairs();
    RecordFilter::from_pairs(f.kind, pairs.iter().map(|(k, v)| (*k, v.as_str())))?;
    for v in [&f.from, &f.to].into_iter().flatten() {
        if parse_time_bound(v).is_none() {
            return Err(format!("invalid time `{v}` (RFC 3339, or YYYY-MM-DDTHH:MM in UTC)"));
        }
    }
    if let Some(c) = &f.cursor
        && Boundary::decode(f.kind, c).is_none()
    {
        return Err(format!("invalid cursor `{c}`"));
    }
    Ok(())
}

impl Store {
    /// One page of records of the filter's kind, and the cursor of the next one.
    pub async fn records(&self, f: &RecordFilter) -> Result<RecordPage> {
        let limit = f.page_size() as usize;
        let (where_sql, args) = filter_sql(f)?;
        let t = table(f.kind);
        let order = match (f.kind, f.oldest_first) {
            (RecordKind::Notifications, true) => "id ASC".to_string(),
            (RecordKind::Notifications, false) => "id DESC".to_string(),
            _ => format!("{} DESC, id DESC", t.order),
        };
        let sql = format!(
            "SELECT {} FROM {} WHERE {where_sql} ORDER BY {order} LIMIT {}",
            t.columns,
            t.name,
            limit + 1
        );
        // Each kind decodes its own row; `key` is where a page ends.
        macro_rules! page {
            ($row:ty, $variant:ident, $key:expr) => {{
                let mut rows: Vec<$row> = on_db!(&self.db, pool => bind_args!(sqlx::query_as(&sql), &args).fetch_all(pool).await?);
                let more = rows.len() > limit;
                rows.truncate(limit);
                let key: fn(&$row) -> Boundary = $key;
                let next_cursor = more.then(|| rows.last().map(|r| key(r).encode())).flatten();
                RecordPage {
                    rows: RecordRows::$variant(rows.into_iter().map(Into::into).collect()),
                    next_cursor,
                }
            }};
        }
        Ok(match f.kind {
            RecordKind::Customers => page!(CustomerRow, Customers, |r| Boundary::Key(r.updated_at, r.id.clone())),
            RecordKind::Subscriptions => {
                page!(SubscriptionRow, Subscriptions, |r| Boundary::Key(
                    r.updated_at,
                    r.id.clone()
                ))
            }
            RecordKind::PaymentFailures => {
                page!(PaymentFailureRow, PaymentFailures, |r| Boundary::Key(
                    r.failed_at,
                    r.id.clone()
                ))
            }
            RecordKind::Notifications => page!(NotificationRow, Notifications, |r| Boundary::Id(r.id)),
            RecordKind::Disputes => page!(DisputeRow, Disputes, |r| Boundary::Key(r.updated_at, r.id.clone())),
        })
    }

    /// One notification as the outbox shows it.
    pub async fn notification(&self, id: i64) -> Result<Option<NotificationRecord>> {
        let sql = format!(
            "SELECT {} FROM notifications WHERE id = $1",
            table(RecordKind::Notifications).columns
        );
        let row: Option<NotificationRow> =
            on_db!(&self.db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?);
        Ok(row.map(Into::into))
    }

    /// The local record of an object, whichever table holds it (a failure by its charge or id).
    pub async fn object_record(&self, id: &str) -> Result<Option<ObjectRecord>> {
        macro_rules! one {
            ($kind:expr, $row:ty, $variant:ident, $where:literal) => {{
                let t = table($kind);
                let sql = format!("SELECT {} FROM {} WHERE {} LIMIT 1", t.columns, t.name, $where);
                let row: Option<$row> =
                    on_db!(&self.db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?);
                if let Some(row) = row {
                    return Ok(Some(ObjectRecord::$variant(row.into())));
                }
            }};
        }
        // Stripe's prefixes say where to look first; the others follow for unusual ids.
        one!(RecordKind::Customers, CustomerRow, Customer, "id = $1");
        one!(RecordKind::Subscriptions, SubscriptionRow, Subscription, "id = $1");
        one!(RecordKind::Disputes, DisputeRow, Dispute, "id = $1");
        one!(
            RecordKind::PaymentFailures,
            PaymentFailureRow,
            PaymentFailure,
            "id = $1"
        );
        Ok(None)
    }

    /// An object's executions in the order of their events' `created` (then arrival), at most `limit`.
    pub async fn object_executions(&self, object_id: &str, limit: i64) -> Result<Vec<ExecutionRow>> {
        let sql = format!("SELECT {COLUMNS} FROM executions WHERE object_id = $1 ORDER BY event_created, seq LIMIT $2");
        on_db!(&self.db, pool => Ok(sqlx::query_as(&sql).bind(object_id).bind(limit).fetch_all(pool).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let b = Boundary::Key(1700000000000, "cus_a.b".into());
        assert_eq!(Boundary::decode(RecordKind::Customers, &b.encode()), Some(b));
        assert_eq!(
            Boundary::decode(RecordKind::Notifications, "42"),
            Some(Boundary::Id(42))
        );
        assert_eq!(Boundary::decode(RecordKind::Notifications, "4x"), None);
        assert_eq!(Boundary::decode(RecordKind::Disputes, "nodot"), None);
    }

    #[test]
    fn a_whole_filter_is_held_to_the_urls_rules() {
        let mut f = RecordFilter::new(RecordKind::Customers);
        assert!(check_record_filter(&f).is_ok());
        f.reason = Some("other".into()); // not a customers parameter: its column does not exist
        assert!(check_record_filter(&f).is_err());
        let mut f = RecordFilter::new(RecordKind::Notifications);
        f.limit = Some(1_000_000);
        assert!(check_record_filter(&f).is_err());
        f.limit = None;
        f.status = Some("'; DROP TABLE notifications; --".into());
        assert!(check_record_filter(&f).is_err());
    }
}
