-- Ingest's own copy of what it needs of each registered gateway (issue 11): its region
-- (messages from a gateway not here are dead-lettered) and its site's IANA time zone
-- (local days for completeness). Fed by the registry's gateway.registered and
-- gateway.updated events (cloud/ingest/handlers.py), so ingest never calls the
-- registry. updated_at is the event's occurred_at: an older event never overwrites a
-- newer one (rows copied below are older than any event: -infinity).
CREATE TABLE ingest.gateways (
    gateway_id  text PRIMARY KEY,
    region      text NOT NULL,
    time_zone   text NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- Events ingest has handled: an effect applies once per event id.
CREATE TABLE ingest.inbox (
    event_id    uuid PRIMARY KEY,
    handled_at  timestamptz NOT NULL DEFAULT now()
);

-- An upgraded database keeps accepting its gateways without replaying events: copy the
-- registry's gateways with their site's time zone. On a fresh database the registry's
-- tables do not exist yet (its migrations run after these): nothing to copy.
DO $$
BEGIN
    IF to_regclass('registry.gateways') IS NOT NULL THEN
        INSERT INTO ingest.gateways (gateway_id, region, time_zone, updated_at)
        SELECT g.id, g.region, s.time_zone, '-infinity'::timestamptz
        FROM registry.gateways g JOIN registry.sites s ON s.id = g.site_id
        ON CONFLICT DO NOTHING;
    END IF;
END
$$;

-- Completeness reads the time zone from ingest.gateways (kept current by the events)
-- instead of the copy a birth used to take.
ALTER TABLE ingest.sessions DROP COLUMN time_zone;
