-- The maintenance leader (issue 19): one row per election, held by whichever process renewed it
-- last and until `expires_at` (unix ms, the server's clock). A lease rather than an advisory
-- lock: a session left mid-protocol (a NAT entry lost, a proxy gone silent) keeps its locks
-- forever, but cannot renew a lease. SQLite needs none: one process owns the file.
CREATE TABLE leader (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
