-- Which site each gateway serves (issue 14): the telemetry store answers per site
-- (energy, latest values) and announces revised energy per site, from ingest's own copy
-- of the registry's gateway events, so it never reads the registry. Null until the
-- next gateway event of a gateway registered before this column (filled below where
-- the registry's tables are in this database).
ALTER TABLE ingest.gateways ADD COLUMN site_id int;
DO $$
BEGIN
    IF to_regclass('registry.gateways') IS NOT NULL THEN
        UPDATE ingest.gateways i SET site_id = g.site_id
        FROM registry.gateways g WHERE g.id = i.gateway_id;
    END IF;
END
$$;
CREATE INDEX gateways_site_idx ON ingest.gateways (site_id);
