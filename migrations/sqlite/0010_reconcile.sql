-- Where each execution came from: a webhook delivery, the reconciler (an event Stripe could
-- not deliver, found through GET /v1/events), or an operator's re-run. Existing rows came
-- from webhooks, except re-runs.
ALTER TABLE executions ADD COLUMN origin TEXT NOT NULL DEFAULT 'webhook'
    CHECK (origin IN ('webhook', 'reconciled', 'rerun'));
UPDATE executions SET origin = 'rerun' WHERE rerun_of IS NOT NULL;
-- The console's origin filter: webhook deliveries are nearly every row (walking `seq` finds
-- them at once), the others are few, so only those are indexed. `origin` never changes after
-- the insert, so no claim or completion writes to this index.
CREATE INDEX executions_origin ON executions (origin, seq) WHERE origin <> 'webhook';

-- One row per reconciliation run: the server's periodic sweep or `deferral reconcile`.
CREATE TABLE reconcile_sweeps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  INTEGER NOT NULL,          -- unix ms
    finished_at INTEGER,                   -- unix ms; NULL while it runs (or its process died)
    since       INTEGER NOT NULL,          -- the window's start: created[gte], unix seconds
    trigger     TEXT NOT NULL CHECK (trigger IN ('sweep', 'command')),
    owner       TEXT NOT NULL,             -- the process that ran it
    pages       INTEGER NOT NULL DEFAULT 0,
    seen        INTEGER NOT NULL DEFAULT 0, -- events Stripe listed
    added       INTEGER NOT NULL DEFAULT 0, -- new executions
    error       TEXT                        -- why it stopped early
);
CREATE INDEX reconcile_sweeps_started ON reconcile_sweeps (started_at);
