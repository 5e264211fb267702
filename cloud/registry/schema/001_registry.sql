-- Sites, gateways and devices of the fleet (IoT device management).
CREATE TABLE registry.sites (
    id          serial PRIMARY KEY,
    name        text NOT NULL,
    region      text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    time_zone   text NOT NULL,
    utility     text,
    latitude    float8 CHECK (latitude BETWEEN -90 AND 90),
    longitude   float8 CHECK (longitude BETWEEN -180 AND 180),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE registry.gateways (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{2,63}$'),
    site_id     int NOT NULL REFERENCES registry.sites (id),
    region      text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gateways_site_idx ON registry.gateways (site_id);

CREATE TABLE registry.devices (
    id            serial PRIMARY KEY,
    gateway_id    text NOT NULL REFERENCES registry.gateways (id),
    local_id      text NOT NULL,
    kind          text NOT NULL DEFAULT 'unknown',
    manufacturer  text,
    model         text,
    serial        text,
    firmware      text,
    models        int[] NOT NULL DEFAULT '{}',
    first_seen    timestamptz NOT NULL DEFAULT now(),
    last_birth    timestamptz,
    UNIQUE (gateway_id, local_id)
);
