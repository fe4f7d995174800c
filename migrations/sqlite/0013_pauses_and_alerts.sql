-- Pause / resume per event type, and the failure alerts' outbox (issue 18).

-- A paused event type or prefix: while a row matches, the type's scheduled executions are not
-- claimed (webhooks are still accepted and stored). `pattern` is a type (`invoice.paid`) or a
-- prefix ending in `*` (`invoice.*`), whose `prefix` is the pattern without the `*`, so that
-- types first seen later are held too.
CREATE TABLE event_type_pauses (
    pattern   TEXT PRIMARY KEY,
    prefix    TEXT,                       -- NULL for a single type
    paused_by TEXT NOT NULL,
    paused_at INTEGER NOT NULL            -- unix ms
);
-- The prefixes, which the claim tests every due execution against while any pause exists.
CREATE INDEX event_type_pauses_prefixes ON event_type_pauses (prefix) WHERE prefix IS NOT NULL;

-- The outbox: one row per execution that ended `failed`, written by the trigger below in the
-- same transaction as the failure (whichever statement made it: a completion, the rescuer,
-- anything later), so no path can forget it and no crash can lose it.
CREATE TABLE alert_failures (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id  TEXT NOT NULL,
    execution_seq INTEGER NOT NULL,
    event_type    TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    error         TEXT,
    failed_at     INTEGER NOT NULL,
    message_id    INTEGER                 -- the alert message that reported it; NULL until composed
);
CREATE INDEX alert_failures_pending ON alert_failures (event_type, id) WHERE message_id IS NULL;

CREATE TRIGGER executions_failed_alert AFTER UPDATE OF state ON executions
WHEN NEW.state = 'failed' AND OLD.state <> 'failed'
BEGIN
    INSERT INTO alert_failures (execution_id, execution_seq, event_type, event_id, error, failed_at)
    VALUES (NEW.id, NEW.seq, NEW.event_type, NEW.event_id, NEW.last_error,
            COALESCE(NEW.finished_at, CAST(strftime('%s', 'now') AS INTEGER) * 1000));
END;

-- Per event type: when its last failure message went out (the digest window counts from it),
-- and whether it is alerting (failures reported, no "recovered" message since).
CREATE TABLE alert_types (
    event_type        TEXT PRIMARY KEY,
    last_message_at   INTEGER NOT NULL,
    last_failure_seq  INTEGER NOT NULL,   -- the newest failed execution reported: success after it recovers
    alerting          BOOLEAN NOT NULL
);

-- Composed messages, and one delivery per receiver (`DEFERRAL_ALERT_WEBHOOK_URL`).
CREATE TABLE alert_messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('failed', 'digest', 'recovered')),
    event_type TEXT NOT NULL,
    failures   INTEGER NOT NULL,          -- failed executions it reports
    summary    TEXT NOT NULL,             -- its `text`
    body       TEXT NOT NULL,             -- the JSON posted
    created_at INTEGER NOT NULL
);
CREATE INDEX alert_messages_created ON alert_messages (created_at);

CREATE TABLE alert_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id       INTEGER NOT NULL REFERENCES alert_messages (id) ON DELETE CASCADE,
    receiver         TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'sent')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_owner      TEXT,                -- the process sending it now
    lease_expires_at INTEGER,
    last_error       TEXT,
    sent_at          INTEGER
);
CREATE INDEX alert_deliveries_pending ON alert_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX alert_deliveries_message ON alert_deliveries (message_id);
