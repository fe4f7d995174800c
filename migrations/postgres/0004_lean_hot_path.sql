-- Every index whose columns a transition writes is rewritten for every execution that makes it:
-- the claim (scheduled -> running) and the completion are the executor's hot path.

-- Which executions of an object are unfinished, keyed by `finished_at` rather than `state`: it
-- is NULL exactly while scheduled or running, so a claim leaves this index alone and only the
-- completion removes the entry (the old one was rewritten by every claim too).
DROP INDEX executions_object_order;
CREATE INDEX executions_object_active ON executions (object_id, event_created, seq) WHERE finished_at IS NULL;

-- Leases are found by execution id (heartbeat) or expiry (rescuer); nothing looks up an owner.
DROP INDEX executions_leases;
