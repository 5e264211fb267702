-- Issue 19 point 6: a cycle's progress, for the admins' screen that follows a run. The
-- run writes ``sites_total`` (the sites of the period it bills, those invoiced by an
-- earlier interrupted run counted done) when it starts and ``sites_done`` as it goes (at
-- most once a second, and at the end), in their own autocommitted statements: a page
-- polling the row sees them at once. NULL total: the run has not started (it waits for
-- the region's lock, or was never run).
ALTER TABLE billing.cycles
    ADD COLUMN sites_total int CHECK (sites_total BETWEEN 0 AND 10000000),
    ADD COLUMN sites_done  int NOT NULL DEFAULT 0 CHECK (sites_done >= 0),
    ADD COLUMN progress_at timestamptz,
    ADD CONSTRAINT cycles_done_within_total CHECK (sites_done <= coalesce(sites_total, 0));

-- A cycle's documents, read by the admins' screens (and counted while it runs).
CREATE INDEX invoices_cycle_idx ON billing.invoices (cycle_id) WHERE cycle_id IS NOT NULL;
