-- A gateway can be disabled (issue 12: `potr gateway revoke`) without deleting it: its
-- devices, readings and history stay, and ingest refuses whatever it still sends. The
-- flag travels to ingest in every gateway.registered / gateway.updated payload.
ALTER TABLE registry.gateways ADD COLUMN enabled boolean NOT NULL DEFAULT true;
