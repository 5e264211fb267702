-- Telemetry store, timescale backend: the same tables as the plain backend's, the
-- readings a hypertable of 1-day chunks (TimescaleDB keeps the chunks; no partitions to
-- create or drop). Its unique key includes the time column, as a hypertable's must.
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE telemetry.metrics (
    id           smallint PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    unit         text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('gauge', 'counter', 'state')),
    description  text NOT NULL
);

-- quality: 0 good, 1 suspect, 2 bad.
CREATE TABLE telemetry.readings (
    ts         timestamptz NOT NULL,
    device_id  int NOT NULL,
    metric_id  smallint NOT NULL,
    value      float8 NOT NULL,
    quality    smallint NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, metric_id, ts)
);

SELECT create_hypertable('telemetry.readings', by_range('ts', INTERVAL '1 day'));
