-- The identity service relays its outbox to each region's bus, a relay per region claiming only
-- its region's rows in id order (ARCHITECTURE decision 152): each one's claim scans its own.
CREATE INDEX outbox_unpublished_region_idx ON identity.outbox (region, id)
    WHERE published_at IS NULL;
