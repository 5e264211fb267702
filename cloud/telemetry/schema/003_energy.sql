-- Energy from counters (issue 14; cloud/telemetry/energy.py): the 15-minute UTC base
-- buckets of every Wh counter of every device, kept by the maintenance job from the
-- ranges the write path marks dirty, the same table on both backends (a pure function
-- computes it, so it is no continuous aggregate). Local hours, days and months of a
-- site are sums of these in the site's zone. energy_mwh: integer milliwatt-hours.
CREATE TABLE telemetry.energy_15m (
    device_id   int NOT NULL,
    metric_id   smallint NOT NULL,
    bucket      timestamptz NOT NULL,
    energy_mwh  bigint NOT NULL,
    samples     int NOT NULL CHECK (samples >= 0),
    covered     interval NOT NULL,
    flags       text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (device_id, metric_id, bucket)
);

-- Recorded meter replacements of a device's counter: both registers at the swap, Wh.
CREATE TABLE telemetry.meter_swaps (
    device_id        int NOT NULL,
    metric_id        smallint NOT NULL,
    replaced_at      timestamptz NOT NULL,
    old_register_wh  numeric(15, 3) NOT NULL CHECK (old_register_wh >= 0),
    new_register_wh  numeric(15, 3) NOT NULL CHECK (new_register_wh >= 0),
    PRIMARY KEY (device_id, metric_id, replaced_at)
);

-- Events the store emits (energy.revised), in the transaction of the change; relayed
-- like every service's outbox (cloud/events/relay.py).
CREATE TABLE telemetry.outbox (
    id            bigserial PRIMARY KEY,
    event_id      uuid NOT NULL UNIQUE,
    name          text NOT NULL,
    region        text NOT NULL,
    source        text NOT NULL,
    occurred_at   timestamptz NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    attempts      int NOT NULL DEFAULT 0,
    last_error    text
);
CREATE INDEX outbox_unpublished_idx ON telemetry.outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at_idx ON telemetry.outbox (published_at)
    WHERE published_at IS NOT NULL;
