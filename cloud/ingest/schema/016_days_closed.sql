-- Closing local days (issue 16): per gateway, the last local day (its site's time zone)
-- whose device completeness ingest announced (device.day_completeness, in the same
-- transaction as this row moves). One row per gateway, not per day: the next days to
-- close are those after closed_through, and the table stays as small as the fleet.
-- Kept apart from ingest.sessions (written by every batch) and ingest.gateways (the
-- registry's copy, rewritten by its events): only the day closing writes here.
CREATE TABLE ingest.days_closed (
    gateway_id      text PRIMARY KEY,
    closed_through  date NOT NULL,
    closed_at       timestamptz NOT NULL
);
