-- A device's id is the key ingest allocated for it (ingest/008), carried by the
-- gateway.birth and device.discovered events: the registry no longer allocates ids.
ALTER TABLE registry.devices ALTER COLUMN id DROP DEFAULT;
DROP SEQUENCE registry.devices_id_seq;
