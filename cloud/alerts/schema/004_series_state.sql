-- Telemetry meets the rules (issue 16, ARCHITECTURE 76): ingest's telemetry.received
-- carries the announced metrics' values of each batch; the alerts service evaluates them
-- per gateway, so its state is one row per gateway (cloud.alerts.evaluate.EvaluatorState
-- holding that gateway's series), locked for the event and written back in the
-- transaction that marks the inbox and changes the alarms: after any restart no sample is
-- skipped (the event is redelivered until that transaction commits) and none raises twice
-- (the inbox refuses a second delivery). Gateways' telemetry never waits on each other.
CREATE TABLE alerts.series_state (
    gateway_id  text PRIMARY KEY,
    region      text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    state       jsonb,
    version     bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
