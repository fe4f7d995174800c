-- Issue 18, after the audit.

-- "Recovered" needs a success that finished after the type's last failure finished: arrival
-- order (`last_failure_seq`) alone took an earlier success of a newer execution for recovery.
-- Existing rows: the failures they reported had finished before their message went out.
ALTER TABLE alert_types ADD COLUMN last_failure_at INTEGER NOT NULL DEFAULT 0;
UPDATE alert_types SET last_failure_at = last_message_at;

-- Since when an execution has been held without a break: set when the first pause holding it
-- begins, kept while any pause holds it, so that resuming the last one moves the discard deadline
-- by the whole time held, not only by the time since that last pause began.
ALTER TABLE executions ADD COLUMN held_since INTEGER;
-- Unset: held since it was created (the pause began first). Executions held now that are older
-- than their oldest pause are held since that pause began.
UPDATE executions SET held_since = (
        SELECT MIN(p.paused_at) FROM event_type_pauses p
        WHERE p.pattern = executions.event_type
           OR (p.prefix IS NOT NULL AND substr(executions.event_type, 1, length(p.prefix)) = p.prefix))
WHERE finished_at IS NULL AND state = 'scheduled' AND discard_at IS NOT NULL AND attempts = 0
  AND created_at < (
        SELECT MIN(p.paused_at) FROM event_type_pauses p
        WHERE p.pattern = executions.event_type
           OR (p.prefix IS NOT NULL AND substr(executions.event_type, 1, length(p.prefix)) = p.prefix));
