-- Telemetry store, plain backend: native range partitions per UTC day.
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
) PARTITION BY RANGE (ts);

-- Safety net for days outside the window partitions are created for (e.g. a gateway
-- whose clock is years off); such a day never gets its own partition later.
CREATE TABLE telemetry.readings_default PARTITION OF telemetry.readings DEFAULT;

CREATE INDEX readings_ts_brin ON telemetry.readings USING brin (ts);
