ALTER TABLE registry.sites ADD COLUMN IF NOT EXISTS account_id text;
