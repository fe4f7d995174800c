-- Mirrors the PostgreSQL migration of the same name, written for PostgreSQL's HOT updates
-- (see there). On SQLite it also helps: a claim no longer rewrites the due index.

-- The final state, NULL while scheduled or running: the finished rows' indexes are keyed by it
-- instead of `state`, which every claim changes.
ALTER TABLE executions ADD COLUMN final_state TEXT
    GENERATED ALWAYS AS (CASE WHEN finished_at IS NOT NULL THEN state END) VIRTUAL;

DROP INDEX executions_finished_state;
DROP INDEX executions_finished_type;
DROP INDEX executions_finished_livemode;
DROP INDEX executions_finished_api_version;
DROP INDEX executions_finished_created;
CREATE INDEX executions_finished_state ON executions (final_state, seq) WHERE finished_at IS NOT NULL;
CREATE INDEX executions_finished_type ON executions (final_state, event_type, seq) WHERE finished_at IS NOT NULL;
CREATE INDEX executions_finished_livemode ON executions (final_state, livemode, seq) WHERE finished_at IS NOT NULL;
CREATE INDEX executions_finished_api_version ON executions (final_state, api_version, seq) WHERE finished_at IS NOT NULL;
CREATE INDEX executions_finished_created ON executions (final_state, created_at) WHERE finished_at IS NOT NULL;

-- Due executions: a claim keeps `next_run_at` (the time it was due) and leaves the row in this
-- index; claimers skip the running ones, at most one per worker.
DROP INDEX executions_due;
CREATE INDEX executions_due ON executions (next_run_at, seq) WHERE finished_at IS NULL;

-- Unlike PostgreSQL, SQLite keeps `executions_lease_expiry`: an update only touches the
-- indexes whose columns it changes, and without it the rescuer would walk the whole backlog
-- on the single writer connection.

DROP INDEX executions_discard;
CREATE INDEX executions_discard ON executions (discard_at) WHERE finished_at IS NULL AND discard_at IS NOT NULL;
