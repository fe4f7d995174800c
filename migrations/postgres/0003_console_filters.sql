-- The console's filtered lists and their counts per status stay index range scans on a large
-- table: each count is `state = ? AND <one filter> … LIMIT cap`, and needs both in one index.
CREATE INDEX executions_state_type ON executions (state, event_type, seq);
CREATE INDEX executions_state_livemode ON executions (state, livemode, seq);
CREATE INDEX executions_state_api_version ON executions (state, api_version, seq);
CREATE INDEX executions_state_created ON executions (state, created_at);
CREATE INDEX executions_created ON executions (created_at);

-- Almost every execution has no `rerun_of`: a partial index stays small and is used even
-- after ANALYZE (which otherwise judges the full index useless, all NULLs).
DROP INDEX executions_rerun_of;
CREATE INDEX executions_rerun_of ON executions (rerun_of) WHERE rerun_of IS NOT NULL;
