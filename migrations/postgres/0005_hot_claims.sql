-- PostgreSQL writes a new row version on every update. If no indexed column changed (key,
-- partial-index condition or expression) and the page has room, the update is "HOT": no index
-- is touched. Otherwise every index of the table gets a new entry. Before this migration a
-- claim changed `state`, `next_run_at` and `lease_expires_at`, all indexed, so each claim (and
-- each heartbeat) wrote an entry into every one of the ~14 indexes on `executions`.
--
-- Now a claim changes only columns no index reads (`state`, `attempts`, `started_at`, the
-- lease), so claims and heartbeats are HOT; only the completion, which finishes a row once,
-- writes index entries.
--
-- Upgrading rewrites `executions` (the generated column) and builds seven indexes under an
-- exclusive lock: on a large table, Deferral is paused for as long as that takes.

-- Room on each page for the claim's and heartbeats' new row versions: HOT needs the same page.
-- A claim takes a page's rows together, so each page needs about as much room again as its
-- rows fill. Measured on the executor benchmark: 30% of claims were HOT at 75, 90% at 50.
ALTER TABLE executions SET (fillfactor = 50);
-- (Before the column below: adding it rewrites the table, and the rewrite honours the setting.)

-- The final state, NULL while scheduled or running: the finished rows' indexes are keyed by it
-- instead of `state`, which every claim changes.
ALTER TABLE executions ADD COLUMN final_state TEXT
    GENERATED ALWAYS AS (CASE WHEN finished_at IS NOT NULL THEN state END) STORED;

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

-- Any index telling running from scheduled rows would change at every claim. The rescuer
-- finds expired leases by walking the unfinished rows (`executions_unfinished`) instead.
DROP INDEX executions_lease_expiry;

DROP INDEX executions_discard;
CREATE INDEX executions_discard ON executions (discard_at) WHERE finished_at IS NULL AND discard_at IS NOT NULL;
