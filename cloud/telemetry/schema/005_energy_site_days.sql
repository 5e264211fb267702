-- A site's energy per local day, kept by the maintenance job from telemetry.energy_15m
-- whenever a bucket of one of its devices changes (cloud/telemetry/energy_store.py), so
-- a year by month sums 365 rows instead of 35,040 buckets a device. ``devices``: the
-- devices summed; a reader whose devices differ (a site that gained a device, a caller
-- who reaches part of a site) sums the buckets instead, so a stale row is never read.
CREATE TABLE telemetry.energy_site_1d (
    site_id     int NOT NULL,
    metric_id   smallint NOT NULL,
    day         date NOT NULL,
    devices     int[] NOT NULL,
    energy_mwh  bigint NOT NULL,
    samples     int NOT NULL CHECK (samples >= 0),
    covered     interval NOT NULL,
    flags       text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (site_id, metric_id, day)
);
