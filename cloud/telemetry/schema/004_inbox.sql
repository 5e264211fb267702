-- Events the store has handled (site.meter_replaced from the customers service,
-- cloud/telemetry/handlers.py): an effect applies once per event id.
CREATE TABLE telemetry.inbox (
    event_id    uuid PRIMARY KEY,
    handled_at  timestamptz NOT NULL DEFAULT now()
);
