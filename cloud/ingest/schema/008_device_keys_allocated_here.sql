-- Ingest owns the device keys (issue 11): a new device's key is allocated from this
-- sequence in the transaction of the batch that first names it, so a batch that fails
-- leaves no key behind. The registry learns keys from gateway.birth and
-- device.discovered events only.
CREATE SEQUENCE ingest.device_key_seq AS int OWNED BY ingest.device_keys.device_id;

-- Keys the registry allocated before this migration that ingest never copied (a batch
-- that failed after the registry had committed the key): ingest adopts them, so every
-- existing device and reading keeps its key. On a fresh database the registry's tables
-- do not exist yet (its migrations run after these): nothing to adopt.
DO $$
BEGIN
    IF to_regclass('registry.devices') IS NOT NULL THEN
        INSERT INTO ingest.device_keys (gateway_id, local_id, device_id)
        SELECT gateway_id, local_id, id FROM registry.devices
        ON CONFLICT DO NOTHING;
    END IF;
END
$$;

-- New keys start above every key ever handed out.
SELECT setval('ingest.device_key_seq', COALESCE(max(device_id), 0) + 1, false)
FROM ingest.device_keys;

ALTER TABLE ingest.device_keys
    ALTER COLUMN device_id SET DEFAULT nextval('ingest.device_key_seq'),
    ADD CONSTRAINT device_keys_device_id_key UNIQUE (device_id);
