-- Rollups, plain backend (ARCHITECTURE decision 46): tables of the same columns as the
-- timescale backend's continuous aggregates, recomputed by the maintenance job
-- (cloud/telemetry/rollups.py) for the ranges the write path marks dirty. Readings of
-- quality bad (2) are left out of every rollup. avg/min/max/last/count per device x
-- metric x bucket; last_ts is the last reading's time (what "last" of a coarser level
-- is taken by). 1 h is made from 5 min and 1 day from 1 h, as the hierarchy of
-- continuous aggregates is on TimescaleDB, with the same formulas.
CREATE TABLE telemetry.rollup_5m (
    device_id  int NOT NULL,
    metric_id  smallint NOT NULL,
    bucket     timestamptz NOT NULL,
    avg        float8 NOT NULL,
    min        float8 NOT NULL,
    max        float8 NOT NULL,
    last       float8 NOT NULL,
    last_ts    timestamptz NOT NULL,
    count      bigint NOT NULL,
    PRIMARY KEY (device_id, metric_id, bucket)
);
CREATE TABLE telemetry.rollup_1h (LIKE telemetry.rollup_5m INCLUDING ALL);
CREATE TABLE telemetry.rollup_1d (LIKE telemetry.rollup_5m INCLUDING ALL);
CREATE INDEX rollup_5m_bucket_idx ON telemetry.rollup_5m (bucket);
CREATE INDEX rollup_1h_bucket_idx ON telemetry.rollup_1h (bucket);

-- What the write path stored since the job last looked: per batch, per device and UTC
-- day, the first and last reading time. The job consumes rows in id order.
CREATE TABLE telemetry.dirty (
    id         bigserial PRIMARY KEY,
    device_id  int NOT NULL,
    from_ts    timestamptz NOT NULL,
    to_ts      timestamptz NOT NULL CHECK (to_ts >= from_ts),
    noted_at   timestamptz NOT NULL DEFAULT now()
);
