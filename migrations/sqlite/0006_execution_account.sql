-- The Connect account of the execution's event (`acct_…`), copied from the event at ingest, so
-- that the console and the API can show it and filter by it, and the executor reads it from the
-- row it claims instead of from the event.
ALTER TABLE executions ADD COLUMN account TEXT;

UPDATE executions SET account = (SELECT ev.account FROM events ev WHERE ev.id = executions.event_id)
WHERE event_id IN (SELECT id FROM events WHERE account IS NOT NULL);

-- Only Connect executions have an account: a partial index stays empty for everyone else, and
-- the account never changes after the insert, so claims and completions never write it.
CREATE INDEX executions_account ON executions (account, seq) WHERE account IS NOT NULL;
