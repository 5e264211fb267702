-- The site's meters as its installation record names them (site.installation_changed):
-- PoTR's system meter (billing_meter, at the system's AC output) and the grid meter.
-- The grid rules watch the grid meter; the system meter's grid_* values are the same
-- premises seen from the system's side, and would raise every grid alarm twice.
ALTER TABLE alerts.installations
    ADD COLUMN billing_meter text CHECK (length(billing_meter) BETWEEN 1 AND 64),
    ADD COLUMN grid_meter    text CHECK (length(grid_meter) BETWEEN 1 AND 64);
