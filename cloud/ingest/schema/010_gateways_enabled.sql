-- A disabled (revoked) gateway stays known to ingest, so its messages are refused with
-- that reason rather than as an unknown gateway's (issue 12). Kept by the registry's
-- gateway.registered / gateway.updated events like the region and time zone: the
-- newest event sets all three. Every gateway known before this was enabled.
ALTER TABLE ingest.gateways ADD COLUMN enabled boolean NOT NULL DEFAULT true;
