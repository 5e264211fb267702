-- Issue 17, the MOSIE in the field: incidents raised on site, the technician's location
-- while on duty, and the parts stock's valuation for workorder.parts_used.

-- Where a work order came from: raised by hand (the office), by an alert policy, or as an
-- incident a MOSIE found on site during another job (``found_on``).
ALTER TABLE dispatch.work_orders
    ADD COLUMN origin text NOT NULL DEFAULT 'hand'
        CHECK (origin IN ('hand', 'policy', 'incident')),
    ADD COLUMN found_on bigint REFERENCES dispatch.work_orders (id),
    ADD CONSTRAINT work_orders_incident_found_on
        CHECK ((origin = 'incident') = (found_on IS NOT NULL));
UPDATE dispatch.work_orders SET origin = 'policy'
    WHERE id IN (SELECT work_order_id FROM dispatch.policy_orders);
CREATE INDEX work_orders_found_on_idx ON dispatch.work_orders (found_on)
    WHERE found_on IS NOT NULL;

-- A technician's location fixes, stored only while on duty with the location notice's
-- current version acknowledged (the service judges; nothing else writes here). Bounded:
-- nothing older than the retention (POTR_DISPATCH_LOCATION_RETENTION_DAYS) is kept — the
-- employee's fixes are purged on each write and everyone's by the sweep.
CREATE TABLE dispatch.locations (
    id             bigserial PRIMARY KEY,
    employee_no    text NOT NULL CHECK (employee_no ~ '^E[0-9]{1,9}$'),
    region         text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    latitude       double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude      double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    -- The fix's radius of 68 % confidence in metres, as the browser reports it.
    accuracy_m     double precision NOT NULL CHECK (accuracy_m > 0 AND accuracy_m <= 10000),
    -- When the phone took the fix, and when it arrived.
    at             timestamptz NOT NULL,
    received_at    timestamptz NOT NULL,
    -- Why the employee was on duty: inside their working hours, or on a job under way.
    duty           text NOT NULL CHECK (duty IN ('working_hours', 'on_job')),
    work_order_id  bigint
);
CREATE INDEX locations_employee_at_idx ON dispatch.locations (employee_no, at DESC);
CREATE INDEX locations_received_idx ON dispatch.locations (received_at);

-- The stock's valuation per unit (SAP's moving average, say) in the region's currency,
-- where known; kept on each use as it was then (what billing and SAP are told).
ALTER TABLE dispatch.parts_stock
    ADD COLUMN unit_value numeric(14, 2) CHECK (unit_value >= 0),
    ADD COLUMN currency text CHECK (currency IN ('AUD', 'USD', 'EUR')),
    ADD CONSTRAINT parts_stock_valued CHECK ((unit_value IS NULL) = (currency IS NULL));
ALTER TABLE dispatch.parts_used
    ADD COLUMN unit_value numeric(14, 2) CHECK (unit_value >= 0),
    ADD COLUMN currency text CHECK (currency IN ('AUD', 'USD', 'EUR'));
