-- A device's key says its gateway's region (cloud/regional_ids.py): key = n * 4 + code
-- (au 1, us 2, es 3), so keys from the three regions' databases never collide.
-- allocate_device_keys gives every new key; the column loses its default so nothing
-- allocates around the rule. Keys issued before keep theirs: the sequence moves past them.
ALTER TABLE ingest.device_keys ALTER COLUMN device_id DROP DEFAULT;
SELECT setval('ingest.device_key_seq', COALESCE(max(device_id), 0) / 4 + 1, false)
FROM ingest.device_keys;
