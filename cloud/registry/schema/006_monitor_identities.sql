-- A monitoring identity (issue 12): reads the broker's $SYS statistics and nothing else,
-- so watching a broker does not need the admin's secret.
ALTER TABLE registry.broker_identities DROP CONSTRAINT broker_identities_kind_check;
ALTER TABLE registry.broker_identities ADD CONSTRAINT broker_identities_kind_check
    CHECK (kind IN ('gateway', 'ingest', 'config', 'admin', 'technician', 'monitor'));
