-- The device-configuration service: signed commands, versioned desired configs, what the
-- gateways report back, and an append-only audit log. Gateways and devices are learned
-- from gateway.birth events (this service never reads the registry's tables).
CREATE TABLE config.gateways (
    gateway_id  text PRIMARY KEY,
    region      text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    -- occurred_at of the birth the devices come from: an older birth arriving late is ignored
    birth_at    timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE config.devices (
    gateway_id  text NOT NULL REFERENCES config.gateways (gateway_id) ON DELETE CASCADE,
    device      text NOT NULL,
    profile     text,
    nameplate   jsonb NOT NULL DEFAULT '{}',
    models      int[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (gateway_id, device)
);

CREATE TABLE config.commands (
    id            uuid PRIMARY KEY,
    gateway_id    text NOT NULL,
    region        text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    device        text,
    name          text NOT NULL,
    args          jsonb NOT NULL DEFAULT '{}',
    reason        text NOT NULL,
    issued_by     text NOT NULL,
    issued_at     timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'accepted', 'done', 'failed', 'rejected', 'expired')),
    detail        text NOT NULL DEFAULT '',
    -- who set a final status: the gateway's ack, or the cloud's timeout (a late ack may
    -- still correct the cloud's guess, never the gateway's word)
    closed_by     text CHECK (closed_by IN ('gateway', 'cloud')),
    document      jsonb NOT NULL,
    published_at  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX commands_gateway_idx ON config.commands (gateway_id, issued_at DESC);
CREATE INDEX commands_unpublished_idx ON config.commands (issued_at)
    WHERE published_at IS NULL AND status = 'pending';
CREATE INDEX commands_open_idx ON config.commands (expires_at)
    WHERE status IN ('pending', 'accepted');

CREATE TABLE config.desired (
    gateway_id    text NOT NULL,
    version       int NOT NULL CHECK (version >= 1),
    region        text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    profile       jsonb NOT NULL,
    devices       jsonb NOT NULL,
    document      jsonb NOT NULL,
    hash          text NOT NULL,
    created_by    text NOT NULL,
    reason        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    rollback_of   int,
    published_at  timestamptz,
    PRIMARY KEY (gateway_id, version)
);
CREATE INDEX desired_unpublished_idx ON config.desired (gateway_id) WHERE published_at IS NULL;

-- The last config_state a gateway reported (version = the last version it handled).
CREATE TABLE config.reported (
    gateway_id   text PRIMARY KEY,
    version      int,
    hash         text,
    status       text NOT NULL CHECK (status IN ('pending', 'applied', 'failed', 'drifted')),
    drift        text[] NOT NULL DEFAULT '{}',
    detail       text NOT NULL DEFAULT '',
    reported_at  timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE config.device_state (
    gateway_id   text NOT NULL,
    device       text NOT NULL,
    version      int,
    status       text NOT NULL CHECK (status IN ('pending', 'applied', 'failed', 'drifted')),
    points       jsonb NOT NULL DEFAULT '{}',
    drift        text[] NOT NULL DEFAULT '{}',
    detail       text NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, device)
);

-- Who asked for what, when, why, on which target, and what came of it. Append-only.
CREATE TABLE config.audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    gateway_id  text NOT NULL,
    target      text,
    reason      text NOT NULL DEFAULT '',
    outcome     text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_gateway_idx ON config.audit (gateway_id, id);

CREATE FUNCTION config.audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'config.audit is append-only';
END;
$$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON config.audit
    FOR EACH ROW EXECUTE FUNCTION config.audit_is_append_only();
