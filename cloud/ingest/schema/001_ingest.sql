-- Ingest: gateway sessions, streams and gaps, the device key map, what gateways report.
CREATE TABLE ingest.sessions (
    gateway_id          text PRIMARY KEY,
    region              text NOT NULL,
    online              boolean,
    boot_id             text,
    stream_id           uuid,
    agent_version       text,
    poll_interval_s     float8,
    publish_interval_s  float8,
    config_version      int,
    last_birth          timestamptz,
    state_ts            timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ingest.device_keys (
    gateway_id  text NOT NULL,
    local_id    text NOT NULL,
    device_id   int NOT NULL,
    PRIMARY KEY (gateway_id, local_id)
);

CREATE TABLE ingest.streams (
    stream_id   uuid PRIMARY KEY,
    gateway_id  text NOT NULL,
    high_seq    bigint NOT NULL DEFAULT 0,
    watermark   bigint NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX streams_gateway_idx ON ingest.streams (gateway_id);

-- Every hole in a stream; a (partial) fill closes the row and opens what remains.
CREATE TABLE ingest.gaps (
    id         bigserial PRIMARY KEY,
    stream_id  uuid NOT NULL REFERENCES ingest.streams (stream_id),
    from_seq   bigint NOT NULL,
    to_seq     bigint NOT NULL CHECK (to_seq >= from_seq),
    opened_at  timestamptz NOT NULL DEFAULT now(),
    closed_at  timestamptz
);
CREATE INDEX gaps_open_idx ON ingest.gaps (stream_id, from_seq) WHERE closed_at IS NULL;

CREATE TABLE ingest.dead_letters (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    topic        text NOT NULL,
    payload      bytea NOT NULL,
    reason       text NOT NULL
);
CREATE INDEX dead_letters_received_idx ON ingest.dead_letters (received_at);

CREATE TABLE ingest.device_last_seen (
    device_id    int PRIMARY KEY,
    gateway_id   text NOT NULL,
    last_ts      timestamptz NOT NULL,
    received_at  timestamptz NOT NULL
);

CREATE TABLE ingest.events (
    stream_id    uuid NOT NULL,
    seq          bigint NOT NULL,
    gateway_id   text NOT NULL,
    ts           timestamptz NOT NULL,
    event        text NOT NULL,
    severity     text NOT NULL,
    device       text,
    detail       jsonb NOT NULL DEFAULT '{}',
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, seq)
);
CREATE INDEX events_gateway_ts_idx ON ingest.events (gateway_id, ts);

CREATE TABLE ingest.cmd_acks (
    stream_id    uuid NOT NULL,
    seq          bigint NOT NULL,
    gateway_id   text NOT NULL,
    command_id   uuid NOT NULL,
    status       text NOT NULL,
    detail       text NOT NULL DEFAULT '',
    ts           timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, seq)
);
CREATE INDEX cmd_acks_command_idx ON ingest.cmd_acks (command_id);

CREATE TABLE ingest.config_states (
    stream_id    uuid NOT NULL,
    seq          bigint NOT NULL,
    gateway_id   text NOT NULL,
    version      int,
    hash         text,
    status       text NOT NULL,
    points       jsonb NOT NULL DEFAULT '{}',
    drift        jsonb NOT NULL DEFAULT '[]',
    detail       text NOT NULL DEFAULT '',
    ts           timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, seq)
);
CREATE INDEX config_states_gateway_idx ON ingest.config_states (gateway_id, ts);
