-- Who may connect to each regional broker (issue 12): gateways, ingest workers, the
-- config service, the admin identity that clears a revoked gateway's retained messages,
-- and field technicians. The brokers' password and ACL files are rendered from here
-- (potr broker render). Secrets are never stored: a password identity keeps the two
-- hashes its brokers verify (Mosquitto's $7$, amqtt's argon2id), computed while the
-- secret was known; a certificate identity keeps none (its CN is the username, the
-- CA's index and CRL hold the certificates).
CREATE TABLE registry.broker_identities (
    username        text PRIMARY KEY CHECK (username !~ '[:+#[:space:]]'),
    kind            text NOT NULL
                    CHECK (kind IN ('gateway', 'ingest', 'config', 'admin', 'technician')),
    region          text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    gateway_id      text REFERENCES registry.gateways (id),
    credential      text NOT NULL CHECK (credential IN ('password', 'certificate')),
    mosquitto_hash  text,
    amqtt_hash      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    rotated_at      timestamptz,
    revoked_at      timestamptz,
    CHECK ((credential = 'password') = (mosquitto_hash IS NOT NULL AND amqtt_hash IS NOT NULL)),
    CHECK ((kind = 'gateway') = (gateway_id IS NOT NULL)),
    CHECK (gateway_id IS NULL OR gateway_id = username),
    CHECK ((kind = 'gateway') = (username !~ '^_'))
);
CREATE INDEX broker_identities_region_idx ON registry.broker_identities (region);
