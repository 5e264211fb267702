-- Which of a site's meters is which, by serial, as the customers service's installation
-- records and meter swaps name them (cloud/telemetry/site_meters.py): ``system`` is
-- PoTR's system meter at the system's AC output (the billing meter), ``grid`` the meter
-- at the site's grid connection. Rows are kept when a meter is replaced, so a site's
-- history keeps its meaning: site-level grid figures read the grid meters and never
-- add the system meter's registers.
CREATE TABLE telemetry.site_meter_roles (
    site_id     int NOT NULL,
    serial      text NOT NULL CHECK (length(serial) BETWEEN 1 AND 128),
    region      text NOT NULL,
    role        text NOT NULL CHECK (role IN ('system', 'grid')),
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (site_id, serial)
);
