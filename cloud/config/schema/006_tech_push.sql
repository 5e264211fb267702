-- Field technicians push a grid-code profile over MQTT (issue 18.4). The service accepts
-- a request only from the technician assigned to an open work order of the site, so it
-- keeps, from dispatch's workorder.* events, who is assigned where; and, from the identity
-- service's user.* events, which broker identity is which employee. It never reads
-- dispatch's or identity's tables.
ALTER TABLE config.work_orders
    ADD COLUMN region       text,
    ADD COLUMN site_id      bigint,
    ADD COLUMN assignee     text,
    ADD COLUMN gateway_ids  text[] NOT NULL DEFAULT '{}';
CREATE INDEX work_orders_site_idx ON config.work_orders (site_id, assignee);

-- A technician's broker username (_tech/<name>) and employee number, as identity says.
CREATE TABLE config.technicians (
    user_id          text PRIMARY KEY,
    broker_username  text UNIQUE,
    employee_no      text,
    home_region      text NOT NULL,
    disabled         boolean NOT NULL DEFAULT false,
    at               timestamptz NOT NULL
);

-- Every technician request seen (replay protection and the log of refusals, which have
-- no gateway to write an audit row for). A request id or nonce is never accepted twice;
-- rows older than the requests' maximum age may be pruned (an old request is refused).
CREATE TABLE config.tech_requests (
    request_id   uuid PRIMARY KEY,
    nonce        text NOT NULL UNIQUE,
    username     text NOT NULL,
    region       text NOT NULL,
    employee_no  text NOT NULL,
    site_id      bigint NOT NULL,
    profile      text NOT NULL,
    sent_at      timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    outcome      text NOT NULL DEFAULT 'pending',
    detail       text NOT NULL DEFAULT '',
    work_order_id bigint,
    versions     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX tech_requests_received_idx ON config.tech_requests (received_at);
