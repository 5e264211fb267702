-- Events the billing service emits (invoice.issued), written in the transaction that
-- numbers the document; the relay publishes them on the bus in id order and marks them
-- (cloud/events/outbox.py, cloud/events/relay.py).
CREATE TABLE billing.outbox (
    id            bigserial PRIMARY KEY,
    event_id      uuid NOT NULL UNIQUE,
    name          text NOT NULL,
    region        text NOT NULL,
    source        text NOT NULL,
    occurred_at   timestamptz NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    attempts      int NOT NULL DEFAULT 0,
    last_error    text
);
-- The relay's claim scans only what is still to publish.
CREATE INDEX outbox_unpublished_idx ON billing.outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at_idx ON billing.outbox (published_at)
    WHERE published_at IS NOT NULL;

-- Events the billing service has handled (energy.revised): an effect applies once per
-- event id.
CREATE TABLE billing.inbox (
    event_id    uuid PRIMARY KEY,
    handled_at  timestamptz NOT NULL DEFAULT now()
);
