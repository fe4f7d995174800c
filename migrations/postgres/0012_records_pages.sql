-- The same indexes as the SQLite migration. The console's records pages and `GET /api/v1/records/{kind}` read each table newest first by
-- one column, then id, a page at a time (keyset): each order has its index, so a page is an
-- index range of its own length, never a sort of the table. The filters an operator uses most
-- (customers on hold, open disputes, a subscription status, a decline reason) have theirs.
CREATE INDEX customers_updated ON customers (updated_at, id);
CREATE INDEX customers_on_hold ON customers (updated_at, id) WHERE on_hold;
CREATE INDEX subscriptions_updated ON subscriptions (updated_at, id);
CREATE INDEX subscriptions_status ON subscriptions (status, updated_at, id);
CREATE INDEX payment_failures_failed ON payment_failures (failed_at, id);
CREATE INDEX payment_failures_reason ON payment_failures (reason, failed_at, id);
CREATE INDEX notifications_customer ON notifications (customer, id);
CREATE INDEX disputes_updated ON disputes (updated_at, id);
CREATE INDEX disputes_open ON disputes (updated_at, id) WHERE hold;
