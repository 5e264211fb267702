-- Per-device status of a reported config (applied / failed / drifted).
ALTER TABLE ingest.config_states ADD COLUMN devices jsonb NOT NULL DEFAULT '{}';
