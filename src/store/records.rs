//! The records the Stripe handlers keep: customers, subscriptions, payment failures,
//! notifications and disputes.
//!
//! Every write is idempotent and insensitive to order. Objects Stripe versions (customers,
//! subscriptions, disputes) keep the `created` of the last event applied in
//! `stripe_updated_at`; an upsert only takes the new values when its event is at least
//! that new, in one statement, so concurrent or late executions cannot undo a newer one.
//! Payment failures merge what each event of one failed try knows; notifications are
//! unique per (kind, source event).

use std::sync::LazyLock;

use super::{Result, Store, now_ms, on_db};

/// What an upsert of a versioned record did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upsert {
    Applied,
    /// The record already reflects a newer event (its id), so nothing changed.
    Stale {
        newer_event: String,
    },
}

/// Which event a write comes from: its id and `created` (unix seconds).
#[derive(Debug, Clone, Copy)]
pub struct Stamp<'a> {
    pub event_id: &'a str,
    pub created: i64,
    pub livemode: bool,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Customer {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub delinquent: bool,
    pub deleted: bool,
    pub on_hold: bool,
    pub livemode: bool,
    pub stripe_updated_at: i64,
    pub last_event_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Subscription {
    pub id: String,
    pub customer: String,
    pub status: String,
    pub price: Option<String>,
    pub quantity: Option<i64>,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub trial_end: Option<i64>,
    pub livemode: bool,
    pub stripe_updated_at: i64,
    pub last_event_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PaymentFailure {
    /// The charge id, or the event id when the failure names no charge.
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
    pub next_payment_attempt: Option<i64>,
    pub failed_at: i64,
    pub livemode: bool,
}

#[derive(Debug, Clone, PartialEq, Default, sqlx::FromRow)]
pub struct Notification {
    pub id: i64,
    pub kind: String,
    pub event_id: String,
    pub customer: Option<String>,
    pub email: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub due_at: Option<i64>,
    pub url: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Dispute {
    pub id: String,
    pub charge: Option<String>,
    pub payment_intent: Option<String>,
    pub customer: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub reason: Option<String>,
    pub status: String,
    pub evidence_due_by: Option<i64>,
    pub hold: bool,
    pub outcome: Option<String>,
    pub funds_withdrawn: bool,
    pub funds_reinstated: bool,
    pub livemode: bool,
    pub stripe_updated_at: i64,
    pub last_event_id: Option<String>,
}

/// `INSERT … ON CONFLICT (id) DO UPDATE` where `newer` columns take the new value only
/// from an event at least as new as the row's, and `sticky` flags, once true, stay true
/// (Stripe never clears them). Placeholders, in order: id, newer…, sticky…,
/// stripe_updated_at, last_event_id, updated_at. Returns the row's `last_event_id`.
fn versioned_upsert(table: &str, newer: &[&str], sticky: &[&str]) -> String {
    let stamp = ["stripe_updated_at", "last_event_id", "updated_at"];
    let columns: Vec<&str> = std::iter::once("id")
        .chain(newer.iter().copied())
        .chain(sticky.iter().copied())
        .chain(stamp)
        .collect();
    let is_newer = format!("excluded.stripe_updated_at >= {table}.stripe_updated_at");
    let sets: Vec<String> = newer
        .iter()
        .chain(stamp.iter())
        .map(|c| format!("{c} = CASE WHEN {is_newer} THEN excluded.{c} ELSE {table}.{c} END"))
        .chain(sticky.iter().map(|c| format!("{c} = {table}.{c} OR excluded.{c}")))
        .collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {} RETURNING last_event_id",
        columns.join(", "),
        super::placeholders(columns.len()),
        sets.join(", ")
    )
}

fn upsert_outcome(stamp: &Stamp<'_>, last_event_id: Option<String>) -> Upsert {
    match last_event_id {
        Some(id) if id != stamp.event_id => Upsert::Stale { newer_event: id },
        _ => Upsert::Applied,
    }
}

static CUSTOMER_UPSERT: LazyLock<String> =
    LazyLock::new(|| versioned_upsert("customers", &["email", "name", "delinquent", "livemode"], &["deleted"]));
static SUBSCRIPTION_UPSERT: LazyLock<String> = LazyLock::new(|| {
    versioned_upsert(
        "subscriptions",
        &[
            "customer",
            "status",
            "price",
            "quantity",
            "current_period_end",
            "cancel_at_period_end",
            "trial_end",
            "livemode",
        ],
        &[],
    )
});
static DISPUTE_UPSERT: LazyLock<String> = LazyLock::new(|| {
    versioned_upsert(
        "disputes",
        &[
            "charge",
            "payment_intent",
            "customer",
            "amount",
            "currency",
            "reason",
            "status",
            "evidence_due_by",
            "hold",
            "outcome",
            "livemode",
        ],
        &["funds_withdrawn", "funds_reinstated"],
    )
});

/// A customer known so far only from a dispute gets a row (version 0, so any customer
/// event fills it); `on_hold` is recomputed from the disputes that name it.
const CUSTOMER_HOLD: &str = "INSERT INTO customers (id, on_hold, stripe_updated_at, updated_at)
     VALUES ($1, EXISTS (SELECT 1 FROM disputes WHERE customer = $1 AND hold), 0, $2)
     ON CONFLICT (id) DO UPDATE SET on_hold = excluded.on_hold, updated_at = excluded.updated_at";

/// Each event of one failed try adds what it knows. The decline (reason, code, message) is the
/// one of the highest `reason_rank` seen, so it does not depend on which event came first
/// (`handlers::declines` says why the ranks are what they are); on a tie the newer write wins.
const PAYMENT_FAILURE_MERGE: &str = "INSERT INTO payment_failures
     (id, customer, invoice, payment_intent, charge, amount, currency, reason, code, message, attempt_count, next_payment_attempt, failed_at, livemode, created_at, reason_rank)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
     ON CONFLICT (id) DO UPDATE SET
       customer = COALESCE(excluded.customer, payment_failures.customer),
       invoice = COALESCE(excluded.invoice, payment_failures.invoice),
       payment_intent = COALESCE(excluded.payment_intent, payment_failures.payment_intent),
       charge = COALESCE(excluded.charge, payment_failures.charge),
       amount = COALESCE(excluded.amount, payment_failures.amount),
       currency = COALESCE(excluded.currency, payment_failures.currency),
       reason = CASE WHEN excluded.reason_rank >= payment_failures.reason_rank THEN excluded.reason ELSE payment_failures.reason END,
       code = CASE WHEN excluded.reason_rank >= payment_failures.reason_rank THEN COALESCE(excluded.code, payment_failures.code) ELSE COALESCE(payment_failures.code, excluded.code) END,
       message = CASE WHEN excluded.reason_rank >= payment_failures.reason_rank THEN COALESCE(excluded.message, payment_failures.message) ELSE COALESCE(payment_failures.message, excluded.message) END,
       reason_rank = CASE WHEN excluded.reason_rank > payment_failures.reason_rank THEN excluded.reason_rank ELSE payment_failures.reason_rank END,
       attempt_count = COALESCE(excluded.attempt_count, payment_failures.attempt_count),
       next_payment_attempt = COALESCE(excluded.next_payment_attempt, payment_failures.next_payment_attempt),
       failed_at = CASE WHEN excluded.failed_at < payment_failures.failed_at THEN excluded.failed_at ELSE payment_failures.failed_at END";

const NOTIFICATION_INSERT: &str = "INSERT INTO notifications
     (kind, event_id, customer, email, amount, currency, due_at, url, reason, message, status, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11)
     ON CONFLICT (kind, event_id) DO NOTHING";

const PAYMENT_FAILURE_COLUMNS: &str = "id, customer, invoice, payment_intent, charge, amount, currency, reason, code, message, attempt_count, next_payment_attempt, failed_at, livemode";

const NOTIFICATION_COLUMNS: &str =
    "id, kind, event_id, customer, email, amount, currency, due_at, url, reason, message, status";

/// The handlers' reads and writes run within the database deadline (`Store::bounded`): they are
/// called during an attempt, whose lease the heartbeat keeps alive, so a call waiting on a
/// connection gone silent would otherwise hold its execution (and those behind it) for good.
impl Store {
    /// Upserts a customer; `deleted` once set stays set.
    pub async fn upsert_customer(&self, c: &Customer, stamp: Stamp<'_>) -> Result<Upsert> {
        self.bounded("record", async {
            let sql: &str = &CUSTOMER_UPSERT;
            let (last,): (Option<String>,) = on_db!(&self.writer, pool => sqlx::query_as(sql)
                .bind(&c.id)
                .bind(&c.email)
                .bind(&c.name)
                .bind(c.delinquent)
                .bind(stamp.livemode)
                .bind(c.deleted)
                .bind(stamp.created)
                .bind(stamp.event_id)
                .bind(now_ms())
                .fetch_one(pool)
                .await?);
            Ok(upsert_outcome(&stamp, last))
        })
        .await
    }

    pub async fn upsert_subscription(&self, s: &Subscription, stamp: Stamp<'_>) -> Result<Upsert> {
        self.bounded("record", async {
            let sql: &str = &SUBSCRIPTION_UPSERT;
            let (last,): (Option<String>,) = on_db!(&self.writer, pool => sqlx::query_as(sql)
                .bind(&s.id)
                .bind(&s.customer)
                .bind(&s.status)
                .bind(&s.price)
                .bind(s.quantity)
                .bind(s.current_period_end)
                .bind(s.cancel_at_period_end)
                .bind(s.trial_end)
                .bind(stamp.livemode)
                .bind(stamp.created)
                .bind(stamp.event_id)
                .bind(now_ms())
                .fetch_one(pool)
                .await?);
            Ok(upsert_outcome(&stamp, last))
        })
        .await
    }

    /// Upserts a dispute and, when its customer is known, recomputes the customer's hold,
    /// both in one transaction.
    pub async fn upsert_dispute(&self, d: &Dispute, stamp: Stamp<'_>) -> Result<Upsert> {
        self.bounded("record", async {
            let sql: &str = &DISPUTE_UPSERT;
            let now = now_ms();
            let last = on_db!(&self.writer, pool => {
                let mut tx = pool.begin_with(self.driver.begin_write()).await?;
                let (last,): (Option<String>,) = sqlx::query_as(sql)
                    .bind(&d.id)
                    .bind(&d.charge)
                    .bind(&d.payment_intent)
                    .bind(&d.customer)
                    .bind(d.amount)
                    .bind(&d.currency)
                    .bind(&d.reason)
                    .bind(&d.status)
                    .bind(d.evidence_due_by)
                    .bind(d.hold)
                    .bind(&d.outcome)
                    .bind(stamp.livemode)
                    .bind(d.funds_withdrawn)
                    .bind(d.funds_reinstated)
                    .bind(stamp.created)
                    .bind(stamp.event_id)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                if let Some(customer) = &d.customer {
                    sqlx::query(CUSTOMER_HOLD).bind(customer).bind(now).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                last
            });
            Ok(upsert_outcome(&stamp, last))
        })
        .await
    }

    /// Records (or completes) one failed payment; `reason_rank` says how telling the field its
    /// reason came from is (0 for `other`): the row keeps the reason of the highest rank.
    pub async fn merge_payment_failure(&self, f: &PaymentFailure, reason_rank: i64) -> Result<()> {
        self.bounded("record", async {
            on_db!(&self.writer, pool => sqlx::query(PAYMENT_FAILURE_MERGE)
                .bind(&f.id)
                .bind(&f.customer)
                .bind(&f.invoice)
                .bind(&f.payment_intent)
                .bind(&f.charge)
                .bind(f.amount)
                .bind(&f.currency)
                .bind(&f.reason)
                .bind(&f.code)
                .bind(&f.message)
                .bind(f.attempt_count)
                .bind(f.next_payment_attempt)
                .bind(f.failed_at)
                .bind(f.livemode)
                .bind(now_ms())
                .bind(reason_rank)
                .execute(pool)
                .await
                .map(|_| ()))?;
            Ok(())
        })
        .await
    }

    /// Queues a notification; false when this event already queued one of this kind.
    pub async fn queue_notification(&self, n: &Notification) -> Result<bool> {
        self.bounded("record", async {
            let inserted = on_db!(&self.writer, pool => sqlx::query(NOTIFICATION_INSERT)
                .bind(&n.kind)
                .bind(&n.event_id)
                .bind(&n.customer)
                .bind(&n.email)
                .bind(n.amount)
                .bind(&n.currency)
                .bind(n.due_at)
                .bind(&n.url)
                .bind(&n.reason)
                .bind(&n.message)
                .bind(now_ms())
                .execute(pool)
                .await?
                .rows_affected());
            Ok(inserted == 1)
        })
        .await
    }

    /// For applications draining the outbox: marks a notification sent (false if it was not pending).
    pub async fn mark_notification_sent(&self, id: i64) -> Result<bool> {
        let changed = on_db!(&self.writer, pool => sqlx::query(
            "UPDATE notifications SET status = 'sent', sent_at = $1 WHERE id = $2 AND status = 'pending'",
        )
        .bind(now_ms())
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(changed == 1)
    }

    pub async fn customer(&self, id: &str) -> Result<Option<Customer>> {
        self.record(
            "customers",
            "id, email, name, delinquent, deleted, on_hold, livemode, stripe_updated_at, last_event_id",
            id,
        )
        .await
    }

    pub async fn subscription(&self, id: &str) -> Result<Option<Subscription>> {
        self.record(
            "subscriptions",
            "id, customer, status, price, quantity, current_period_end, cancel_at_period_end, trial_end, livemode, stripe_updated_at, last_event_id",
            id,
        )
        .await
    }

    pub async fn payment_failure(&self, id: &str) -> Result<Option<PaymentFailure>> {
        self.record("payment_failures", PAYMENT_FAILURE_COLUMNS, id).await
    }

    /// A customer's failed payments, oldest first: one per failed try.
    pub async fn customer_payment_failures(&self, customer: &str) -> Result<Vec<PaymentFailure>> {
        let sql = format!(
            "SELECT {PAYMENT_FAILURE_COLUMNS} FROM payment_failures WHERE customer = $1 ORDER BY failed_at, id"
        );
        on_db!(&self.db, pool => Ok(sqlx::query_as(&sql).bind(customer).fetch_all(pool).await?))
    }

    pub async fn dispute(&self, id: &str) -> Result<Option<Dispute>> {
        self.record(
            "disputes",
            "id, charge, payment_intent, customer, amount, currency, reason, status, evidence_due_by, hold, outcome, funds_withdrawn, funds_reinstated, livemode, stripe_updated_at, last_event_id",
            id,
        )
        .await
    }

    /// The notifications an event queued.
    pub async fn notifications_for(&self, event_id: &str) -> Result<Vec<Notification>> {
        let sql = format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE event_id = $1 ORDER BY id");
        on_db!(&self.db, pool => Ok(sqlx::query_as(&sql).bind(event_id).fetch_all(pool).await?))
    }

    /// Pending notifications, oldest first.
    pub async fn pending_notifications(&self, limit: i64) -> Result<Vec<Notification>> {
        let sql =
            format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE status = 'pending' ORDER BY id LIMIT $1");
        on_db!(&self.db, pool => Ok(sqlx::query_as(&sql).bind(limit).fetch_all(pool).await?))
    }

    /// A customer's email, for messages whose event does not carry it.
    pub async fn customer_email(&self, id: &str) -> Result<Option<String>> {
        Ok(self.customer(id).await?.and_then(|c| c.email))
    }

    async fn record<T>(&self, table: &str, columns: &str, id: &str) -> Result<Option<T>>
    where
        T: Send
            + Unpin
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        self.bounded("record", async {
            let sql = format!("SELECT {columns} FROM {table} WHERE id = $1");
            on_db!(&self.db, pool => Ok(sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?))
        })
        .await
    }
}
