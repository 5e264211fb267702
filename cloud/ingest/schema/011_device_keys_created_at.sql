-- When each device key was allocated (issue 12): a gateway may add only so many new
-- devices per UTC day (POTR_INGEST_MAX_NEW_DEVICES_PER_DAY), counted from here. Keys
-- allocated before this column existed count as old (-infinity), never as today's.
ALTER TABLE ingest.device_keys
    ADD COLUMN created_at timestamptz NOT NULL DEFAULT '-infinity';
ALTER TABLE ingest.device_keys ALTER COLUMN created_at SET DEFAULT now();
