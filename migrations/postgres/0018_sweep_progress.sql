-- A reconciliation run records its counts after every page it stores, and when: the console
-- tells a run that is still listing from one whose process died (no finished_at, and no page
-- for longer than any live run goes without one), which it shows as interrupted.
ALTER TABLE reconcile_sweeps ADD COLUMN progressed_at BIGINT; -- unix ms of the latest page; NULL before the first
