-- Events the employees service emits (employee.changed), written in the transaction of
-- the change to the staff record; the relay publishes them on the bus in id order and
-- marks them (cloud/events/outbox.py, cloud/events/relay.py). Changes to one employee
-- hold its row locked, so its events enter here in the order they commit.
CREATE TABLE employees.outbox (
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
CREATE INDEX outbox_unpublished_idx ON employees.outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at_idx ON employees.outbox (published_at)
    WHERE published_at IS NOT NULL;
