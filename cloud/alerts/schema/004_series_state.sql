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

-- Each gateway's hourly marks of its inverters' energy counters
-- (cloud.alerts.production.ProductionState as JSON), written with the series state: the
-- production over a shortfall rule's window is the difference of two marks.
ALTER TABLE alerts.series_state ADD COLUMN production jsonb;

-- Where the sun is for a gateway's site (registry's gateway events; null while unknown).
ALTER TABLE alerts.gateways
    ADD COLUMN latitude  double precision CHECK (latitude BETWEEN -90 AND 90),
    ADD COLUMN longitude double precision CHECK (longitude BETWEEN -180 AND 180);

-- Sites' arrays as the customers service announces them (site.installation_changed):
-- the clear-sky expectation of shortfall rules. The newest record wins.
CREATE TABLE alerts.installations (
    region       text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    site_id      int NOT NULL,
    pv_kwp       numeric(11, 3) NOT NULL CHECK (pv_kwp > 0),
    tilt_deg     numeric(4, 1) NOT NULL CHECK (tilt_deg BETWEEN 0 AND 90),
    azimuth_deg  numeric(4, 1) NOT NULL CHECK (azimuth_deg BETWEEN 0 AND 360),
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (region, site_id)
);

-- Each gateway's devices and their kinds, from ingest's gateway.birth (classified by
-- device_profiles.kinds, as the registry does): rules that name device kinds.
CREATE TABLE alerts.devices (
    gateway_id  text NOT NULL,
    device      text NOT NULL,
    kind        text NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (gateway_id, device)
);
