-- Events the support service emits (ticket.*: a plan change approved, a work order
-- asked for, a ticket resolved), written in the transaction of the change; the relay
-- publishes them on the bus in id order and marks them (cloud/events/outbox.py,
-- cloud/events/relay.py). Changes to one ticket hold its row locked, so its events enter
-- here in the order they commit.
CREATE TABLE support.outbox (
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
CREATE INDEX outbox_unpublished_idx ON support.outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at_idx ON support.outbox (published_at)
    WHERE published_at IS NOT NULL;

-- Events it consumed (workorder.created of the work orders it asked for), once each.
CREATE TABLE support.inbox (
    event_id    uuid PRIMARY KEY,
    handled_at  timestamptz NOT NULL DEFAULT now()
);
