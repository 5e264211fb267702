-- Gateways held while a technician is on their site (issue 17): commands and configs to a
-- held gateway are stored but not published until no work order holds it. Learned from
-- dispatch's workorder.* events; this service never reads dispatch's tables.

-- The newest workorder.* event applied per work order (its ``at``): an older one arriving
-- late changes nothing, even after the hold it would restore was lifted.
CREATE TABLE config.work_orders (
    work_order_id  bigint PRIMARY KEY,
    status         text NOT NULL,
    on_site        boolean NOT NULL,
    at             timestamptz NOT NULL
);

-- One row per (gateway, work order) while that work order is on site; several work orders
-- may hold one gateway, which is released when the last of them leaves.
CREATE TABLE config.holds (
    gateway_id     text NOT NULL,
    work_order_id  bigint NOT NULL REFERENCES config.work_orders (work_order_id),
    since          timestamptz NOT NULL,
    PRIMARY KEY (gateway_id, work_order_id)
);
CREATE INDEX holds_work_order_idx ON config.holds (work_order_id);
