-- A site's id says its region (cloud/regional_ids.py): id = n * 4 + code (au 1, us 2,
-- es 3), so ids from the three regions' databases never collide. The repository gives
-- every new site its id; the column loses its default so nothing inserts around the
-- rule. Ids issued before keep theirs: the sequence moves past them.
ALTER TABLE registry.sites ALTER COLUMN id DROP DEFAULT;
SELECT setval('registry.sites_id_seq', COALESCE(max(id), 0) / 4 + 1, false) FROM registry.sites;
-- New rows only (NOT VALID): a row from before the rule keeps its id.
ALTER TABLE registry.sites ADD CONSTRAINT sites_id_region_check
    CHECK (id % 4 = array_position(ARRAY['au', 'us', 'es']::text[], region)) NOT VALID;
