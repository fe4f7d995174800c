-- The console's sessions live in the database, so logging out, expiry and a password change
-- hold in every process and across restarts.

-- The key session tokens are signed with: generated once by the first process to need it
-- (unless DEFERRAL_SESSION_SECRET is set), then shared by every process.
CREATE TABLE console_secret (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    secret     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE console_sessions (
    id         TEXT PRIMARY KEY,          -- random; shown in the audit log (a token also needs the key)
    role       TEXT NOT NULL CHECK (role IN ('operator', 'viewer')),
    credential TEXT NOT NULL,             -- keyed fingerprint of the password that opened it
    address    TEXT NOT NULL,             -- the client that logged in
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ended_at   INTEGER                     -- logged out, or its password changed
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- Every operator action: who (role and session), when, what, how many, from which address.
-- Kept as long as executions (DEFERRAL_RETENTION).
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    role       TEXT NOT NULL,             -- operator (console) | api (bearer token)
    session_id TEXT,
    address    TEXT NOT NULL,
    action     TEXT NOT NULL,             -- retry | rerun | cancel | bulk-rerun | bulk-cancel
    target     TEXT NOT NULL,             -- the execution, or a bulk action's filter (query string)
    result_id  TEXT,                      -- the execution a re-run created
    applied    INTEGER NOT NULL,
    skipped    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX audit_log_at ON audit_log (at);
