-- Local records kept right by the Stripe handlers; applications read these tables.
-- `stripe_updated_at` is the `created` (unix seconds) of the last event applied: a row is
-- only overwritten by an event at least that new, so late or repeated events change nothing.

CREATE TABLE customers (
    id                TEXT PRIMARY KEY,
    email             TEXT,
    name              TEXT,
    delinquent        BOOLEAN NOT NULL DEFAULT FALSE,
    deleted           BOOLEAN NOT NULL DEFAULT FALSE,
    on_hold           BOOLEAN NOT NULL DEFAULT FALSE,  -- an open dispute holds the customer
    livemode          BOOLEAN NOT NULL DEFAULT FALSE,
    stripe_updated_at BIGINT NOT NULL,                -- 0: only known from a dispute so far
    last_event_id     TEXT,
    updated_at        BIGINT NOT NULL                 -- unix ms
);

CREATE TABLE subscriptions (
    id                   TEXT PRIMARY KEY,
    customer             TEXT NOT NULL,
    status               TEXT NOT NULL,
    price                TEXT,
    quantity             BIGINT,
    current_period_end   BIGINT,
    cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE,
    trial_end            BIGINT,
    livemode             BOOLEAN NOT NULL DEFAULT FALSE,
    stripe_updated_at    BIGINT NOT NULL,
    last_event_id        TEXT,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX subscriptions_customer ON subscriptions (customer);

-- One row per failed payment: the invoice, payment intent and charge events of one
-- failed try share the charge id and fill the same row.
CREATE TABLE payment_failures (
    id                   TEXT PRIMARY KEY,              -- the charge id, else the event id
    customer             TEXT,
    invoice              TEXT,
    payment_intent       TEXT,
    charge               TEXT,
    amount               BIGINT,
    currency             TEXT,
    reason               TEXT NOT NULL,                 -- insufficient_funds | expired_card | card_declined | bank_restriction | authentication_required | other
    code                 TEXT,                          -- Stripe's decline_code or failure code, as sent
    message              TEXT,
    attempt_count        BIGINT,
    next_payment_attempt BIGINT,
    failed_at            BIGINT NOT NULL,              -- the event's created, unix seconds
    livemode             BOOLEAN NOT NULL DEFAULT FALSE,
    created_at           BIGINT NOT NULL
);
CREATE INDEX payment_failures_customer ON payment_failures (customer);

-- An outbox: one message per (kind, source event), `pending` until the application sends it.
CREATE TABLE notifications (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT NOT NULL,                           -- payment_failed | upcoming_charge | invoice_email | trial_ending
    event_id   TEXT NOT NULL,
    customer   TEXT,
    email      TEXT,
    amount     BIGINT,
    currency   TEXT,
    due_at     BIGINT,                                 -- the charge / trial end date, unix seconds
    url        TEXT,                                    -- the hosted invoice
    reason     TEXT,                                    -- the normalised decline reason
    message    TEXT,
    status     TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent')),
    created_at BIGINT NOT NULL,
    sent_at    BIGINT,
    UNIQUE (kind, event_id)
);
CREATE INDEX notifications_pending ON notifications (status, id);

CREATE TABLE disputes (
    id                TEXT PRIMARY KEY,
    charge            TEXT,
    payment_intent    TEXT,
    customer          TEXT,                             -- from the charge; unknown without STRIPE_SECRET_KEY
    amount            BIGINT,
    currency          TEXT,
    reason            TEXT,
    status            TEXT NOT NULL,
    evidence_due_by   BIGINT,
    hold              BOOLEAN NOT NULL,
    outcome           TEXT,                             -- won | lost, once closed
    funds_withdrawn   BOOLEAN NOT NULL DEFAULT FALSE,
    funds_reinstated  BOOLEAN NOT NULL DEFAULT FALSE,
    livemode          BOOLEAN NOT NULL DEFAULT FALSE,
    stripe_updated_at BIGINT NOT NULL,
    last_event_id     TEXT,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX disputes_customer ON disputes (customer) WHERE hold;
