-- Assignment by location and connection approvals (issue 18, point 2).
--
-- Where each gateway stands, learned from the registry's gateway.registered/updated
-- events (this service never reads the registry's tables): the site, its network operator
-- and coordinates, as the newest event (occurred_at) said.
CREATE TABLE config.gateway_sites (
    gateway_id   text PRIMARY KEY,
    site_id      int NOT NULL,
    region       text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    utility      text,
    latitude     float8,
    longitude    float8,
    occurred_at  timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gateway_sites_site_idx ON config.gateway_sites (site_id);

-- A network operator's approval of a site's connection: its reference, the grid-code
-- profile (so the region) and the export limit it approves. Append-only: the newest row
-- per site is in force, the older ones are its history.
CREATE TABLE config.connection_approvals (
    id              bigserial PRIMARY KEY,
    site_id         int NOT NULL,
    region          text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    reference       text NOT NULL CHECK (length(reference) BETWEEN 1 AND 200),
    profile         text NOT NULL,
    export_limit_w  double precision CHECK (export_limit_w >= 0),
    phases          int NOT NULL DEFAULT 1 CHECK (phases IN (1, 2, 3)),
    note            text NOT NULL DEFAULT '',
    recorded_by     text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX connection_approvals_site_idx ON config.connection_approvals (site_id, id DESC);
CREATE TRIGGER connection_approvals_append_only BEFORE UPDATE OR DELETE
    ON config.connection_approvals
    FOR EACH ROW EXECUTE FUNCTION config.audit_is_append_only();

-- What automatic provisioning made of each gateway's birth: a first config set by the
-- service ("configured"), or why not ("unassigned", "needs_override", "refused",
-- "has_config"). One row per gateway: a newer birth is tried again.
CREATE TABLE config.provisioning (
    gateway_id  text PRIMARY KEY,
    birth_at    timestamptz NOT NULL,
    outcome     text NOT NULL
                CHECK (outcome IN ('configured', 'unassigned', 'needs_override', 'refused',
                                   'has_config')),
    profile     text,
    rule        text,
    version     int,
    detail      text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT now()
);
