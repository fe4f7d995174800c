-- Every index whose columns a transition writes is rewritten for every execution that makes it:
-- the claim (scheduled -> running) and the completion are the executor's hot path.

-- Which executions of an object are unfinished, keyed by `finished_at` rather than `state`: it
-- is NULL exactly while scheduled or running, so a claim leaves this index alone and only the
-- completion removes the entry (the old one was rewritten by every claim too).
DROP INDEX executions_object_order;
CREATE INDEX executions_object_active ON executions (object_id, event_created, seq) WHERE finished_at IS NULL;

-- Leases are found by execution id (heartbeat) or expiry (rescuer); nothing looks up an owner.
DROP INDEX executions_leases;

-- The console's filters (0003) were keyed by state, so claim and completion each rewrote all
-- five for every execution. Now finished rows, which never change state again, have the
-- state-keyed indexes (written once, at completion), and unfinished rows (scheduled or
-- running: the backlog, usually a small part of the table) have two without state, which a
-- claim leaves alone. Queries name the part they read (`finished_at IS [NOT] NULL`).
DROP INDEX executions_state;
DROP INDEX executions_state_type;
DROP INDEX executions_state_livemode;
DROP INDEX executions_state_api_version;
DROP INDEX executions_state_created;
CREATE INDEX executions_finished_state ON executions (state, seq) WHERE finished_at IS NOT NULL;
CREATE INDEX executions_finished_type ON executions (state, event_type, seq) WHERE finished_at IS NOT NULL;
CREATE INDEX executions_finished_livemode ON executions (state, livemode, seq) WHERE finished_at IS NOT NULL;
CREATE INDEX executions_finished_api_version ON executions (state, api_version, seq) WHERE finished_at IS NOT NULL;
CREATE INDEX executions_finished_created ON executions (state, created_at) WHERE finished_at IS NOT NULL;
CREATE INDEX executions_unfinished ON executions (seq) WHERE finished_at IS NULL;
CREATE INDEX executions_unfinished_type ON executions (event_type, seq) WHERE finished_at IS NULL;

-- The discarder looks for scheduled executions past their deadline every poll interval, on
-- the writer; without an index that read every scheduled execution. Empty unless deadlines are set.
CREATE INDEX executions_discard ON executions (discard_at) WHERE state = 'scheduled' AND discard_at IS NOT NULL;
