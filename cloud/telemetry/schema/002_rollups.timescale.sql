-- Rollups, timescale backend (ARCHITECTURE decision 46): a hierarchy of continuous
-- aggregates with the plain backend's columns — 5 min from the readings, 1 h from
-- 5 min, 1 day from 1 h — materialised only (no real-time union), so both backends
-- answer the same until a refresh. Readings of quality bad (2) are left out. Refresh
-- policies keep the recent window fresh; the maintenance job refreshes the ranges the
-- write path marks dirty (late data beyond a policy's window included).
CREATE MATERIALIZED VIEW telemetry.rollup_5m
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT device_id,
       metric_id,
       time_bucket(INTERVAL '5 minutes', ts) AS bucket,
       avg(value) AS avg,
       min(value) AS min,
       max(value) AS max,
       last(value, ts) AS last,
       max(ts) AS last_ts,
       count(*) AS count
FROM telemetry.readings
WHERE quality < 2
GROUP BY device_id, metric_id, time_bucket(INTERVAL '5 minutes', ts)
WITH NO DATA;

CREATE MATERIALIZED VIEW telemetry.rollup_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT device_id,
       metric_id,
       time_bucket(INTERVAL '1 hour', bucket) AS bucket,
       sum(avg * count) / sum(count) AS avg,
       min(min) AS min,
       max(max) AS max,
       last(last, last_ts) AS last,
       max(last_ts) AS last_ts,
       sum(count)::bigint AS count
FROM telemetry.rollup_5m
GROUP BY device_id, metric_id, time_bucket(INTERVAL '1 hour', bucket)
WITH NO DATA;

CREATE MATERIALIZED VIEW telemetry.rollup_1d
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT device_id,
       metric_id,
       time_bucket(INTERVAL '1 day', bucket) AS bucket,
       sum(avg * count) / sum(count) AS avg,
       min(min) AS min,
       max(max) AS max,
       last(last, last_ts) AS last,
       max(last_ts) AS last_ts,
       sum(count)::bigint AS count
FROM telemetry.rollup_1h
GROUP BY device_id, metric_id, time_bucket(INTERVAL '1 day', bucket)
WITH NO DATA;

CREATE TABLE telemetry.dirty (
    id         bigserial PRIMARY KEY,
    device_id  int NOT NULL,
    from_ts    timestamptz NOT NULL,
    to_ts      timestamptz NOT NULL CHECK (to_ts >= from_ts),
    noted_at   timestamptz NOT NULL DEFAULT now()
);

-- Compression (columnstore) of the readings: per device and metric, in time order; the
-- age after which chunks are compressed, and every retention, are set from the
-- settings by the maintenance job (cloud/telemetry/maintenance.py).
ALTER TABLE telemetry.readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id, metric_id',
    timescaledb.compress_orderby = 'ts'
);

-- Refresh policies keep the recent window of each level fresh on a real TimescaleDB
-- server (its scheduler runs them); the job refreshes what the write path marked dirty
-- beyond these windows.
SELECT add_continuous_aggregate_policy('telemetry.rollup_5m',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '5 minutes',
    schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('telemetry.rollup_1h',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes');
SELECT add_continuous_aggregate_policy('telemetry.rollup_1d',
    start_offset => INTERVAL '7 days', end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '1 hour');
