-- A site's grid-connection meter (ARCHITECTURE decision 119): the billing-grade meter at
-- the site's connection to the network, whose export register billing subtracts where
-- energy consumed on site is billed (au, es). Optional: us sites bill production and
-- need none. A different meter from the billing meter (the system's AC output).
ALTER TABLE customers.installations
    ADD COLUMN grid_meter text CHECK (grid_meter ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    ADD CONSTRAINT installations_grid_meter_differs CHECK (grid_meter <> billing_meter);
