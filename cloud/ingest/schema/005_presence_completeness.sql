-- Offline detection and completeness (issue 6).
-- The site's IANA time zone (from the registry at birth) makes "local day" for
-- completeness; last_message_at is the newest message of any kind, updated once per
-- batch, so the offline check can tell a silent gateway.
ALTER TABLE ingest.sessions
    ADD COLUMN time_zone text,
    ADD COLUMN last_message_at timestamptz;

-- The status a gateway last reported per device (birth statuses, device_unreachable /
-- device_reachable events), newest report wins.
CREATE TABLE ingest.device_reports (
    gateway_id   text NOT NULL,
    local_id     text NOT NULL,
    status       text NOT NULL,
    reported_at  timestamptz NOT NULL,
    PRIMARY KEY (gateway_id, local_id)
);

-- What the offline check last announced per gateway / device: a transition is emitted
-- once, because this row changes in the same transaction as the event's outbox row.
CREATE TABLE ingest.presence (
    kind        text NOT NULL CHECK (kind IN ('gateway', 'device')),
    key         text NOT NULL,
    online      boolean NOT NULL,
    reason      text NOT NULL DEFAULT '',
    changed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key)
);
