-- The staff's fleet screen counts a region's dead letters of the last hour (by when each
-- was last received: a repeat bumps last_received_at, migration 003); nothing purges
-- the table, so that count must not scan it.
CREATE INDEX dead_letters_last_received_idx ON ingest.dead_letters (last_received_at);
