-- Stripe events as delivered, one row per event id: the dedupe key (kept at least as
-- long as the executions that use it) and the verbatim payload handlers may run on.
CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    created      BIGINT NOT NULL,          -- Stripe's created, unix seconds
    livemode     BOOLEAN NOT NULL,
    api_version  TEXT,
    account      TEXT,
    object_id    TEXT,
    object_type  TEXT,
    payload      TEXT NOT NULL,
    received_at  BIGINT NOT NULL,          -- unix ms
    execution_id TEXT NOT NULL              -- the first execution created for it
);
CREATE INDEX events_received_at ON events (received_at);

CREATE TABLE executions (
    seq              BIGSERIAL PRIMARY KEY, -- arrival order; keyset cursor
    id               TEXT NOT NULL UNIQUE,
    event_id         TEXT NOT NULL REFERENCES events (id),
    event_type       TEXT NOT NULL,
    event_created    BIGINT NOT NULL,
    livemode         BOOLEAN NOT NULL,
    api_version      TEXT,
    object_id        TEXT,
    state            TEXT NOT NULL CHECK (state IN ('scheduled', 'running', 'succeeded', 'failed', 'cancelled', 'discarded')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    scheduled_at     BIGINT NOT NULL,      -- first due time
    next_run_at      BIGINT,               -- set while scheduled
    discard_at       BIGINT,
    started_at       BIGINT,               -- start of the latest attempt
    finished_at      BIGINT,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    last_error       TEXT,
    result           TEXT,
    source           TEXT,
    rerun_of         TEXT REFERENCES executions (id) ON DELETE SET NULL
);
CREATE INDEX executions_due ON executions (next_run_at, seq) WHERE state = 'scheduled';
CREATE INDEX executions_object_order ON executions (object_id, event_created, seq) WHERE state IN ('scheduled', 'running');
CREATE INDEX executions_leases ON executions (lease_owner) WHERE state = 'running';
CREATE INDEX executions_lease_expiry ON executions (lease_expires_at) WHERE state = 'running';
CREATE INDEX executions_finished ON executions (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX executions_state ON executions (state, seq);
CREATE INDEX executions_type ON executions (event_type, seq);
CREATE INDEX executions_livemode ON executions (livemode, seq);
CREATE INDEX executions_api_version ON executions (api_version, seq);
CREATE INDEX executions_event ON executions (event_id);
CREATE INDEX executions_object ON executions (object_id, seq);
CREATE INDEX executions_rerun_of ON executions (rerun_of);

-- One row per finished try.
CREATE TABLE attempts (
    execution_id  TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    number        BIGINT NOT NULL,
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT NOT NULL,
    duration_us   BIGINT NOT NULL,
    outcome       TEXT NOT NULL,            -- succeeded | error | lost | aborted
    error_kind    TEXT,                     -- retryable | permanent | timeout | lost | aborted
    error_message TEXT,
    worker        TEXT,
    PRIMARY KEY (execution_id, number)
);
