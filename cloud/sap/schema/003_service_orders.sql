-- Work orders to SAP (issue 20, point 5): each work order as one service order, each
-- completion as one service confirmation (labour time and parts), from the dispatch
-- service's workorder.* events; status changes made in SAP read back by delta polling
-- and announced through this service's own outbox (service_order.changed).

-- One service order per work order: what SAP should hold (the newest event's), where
-- sending it stands, and what SAP last said of it.
CREATE TABLE sap.service_orders (
    region           text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    work_order_id    bigint NOT NULL,
    reference        text NOT NULL UNIQUE CHECK (length(reference) BETWEEN 1 AND 80),
    account_id       text CHECK (account_id ~ '^acc_[0-9a-f]{32}$'),
    description      text NOT NULL CHECK (length(description) BETWEEN 1 AND 40),
    priority         text NOT NULL CHECK (priority IN ('P1', 'P2', 'P3', 'P4')),
    requested_start  timestamptz,
    -- The work order was cancelled: SAP's order is to be rejected (never deleted).
    rejected         boolean NOT NULL DEFAULT false,
    desired_at       timestamptz NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'exported', 'dead')),
    attempts         int NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_id         uuid,
    lease_until      timestamptz,
    outcome_unknown  boolean NOT NULL DEFAULT false,
    sap_service_order text,
    -- What SAP said last (the delta poll, or our own rejection): open/rejected/completed.
    sap_status       text NOT NULL DEFAULT 'open'
                         CHECK (sap_status IN ('open', 'rejected', 'completed')),
    sap_reason       text,
    sap_changed_at   timestamptz,
    last_error       text,
    dead_reason      text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    exported_at      timestamptz,
    dead_at          timestamptz,
    PRIMARY KEY (region, work_order_id),
    CHECK (state <> 'exported' OR (sap_service_order IS NOT NULL AND exported_at IS NOT NULL)),
    CHECK ((state = 'dead') = (dead_reason IS NOT NULL))
);
CREATE INDEX service_orders_due_idx ON sap.service_orders (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX service_orders_exported_idx ON sap.service_orders (region, exported_at);

-- The work order's on-site state over time, one sample per event: labour time is the
-- sum of the on-site spans. ``confirmation``: the confirmation that carried it.
CREATE TABLE sap.service_time (
    event_id       uuid PRIMARY KEY,
    region         text NOT NULL,
    work_order_id  bigint NOT NULL,
    at             timestamptz NOT NULL,
    on_site        boolean NOT NULL,
    confirmation   text
);
CREATE INDEX service_time_order_idx ON sap.service_time (region, work_order_id);

-- Parts taken for a job (workorder.parts_used), one row per use and part number.
CREATE TABLE sap.service_parts (
    region         text NOT NULL,
    part_use_id    bigint NOT NULL,
    part_no        text NOT NULL CHECK (length(part_no) BETWEEN 1 AND 40),
    work_order_id  bigint NOT NULL,
    quantity       int NOT NULL CHECK (quantity > 0),
    unit_value     numeric(16, 2),
    currency       text,
    confirmation   text,
    PRIMARY KEY (region, part_use_id, part_no)
);
CREATE INDEX service_parts_order_idx ON sap.service_parts (region, work_order_id);

-- One service confirmation per completion of a work order, keyed by its reference
-- (POTR-AU-WO-123-C0): the labour hours and parts it carries, fixed when it was queued.
CREATE TABLE sap.service_confirmations (
    reference        text PRIMARY KEY CHECK (length(reference) BETWEEN 1 AND 35),
    region           text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    work_order_id    bigint NOT NULL,
    description      text NOT NULL,
    labour_hours     numeric(10, 2) NOT NULL CHECK (labour_hours >= 0),
    parts            jsonb NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'exported', 'dead')),
    attempts         int NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_id         uuid,
    lease_until      timestamptz,
    outcome_unknown  boolean NOT NULL DEFAULT false,
    sap_confirmation text,
    last_error       text,
    dead_reason      text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    exported_at      timestamptz,
    dead_at          timestamptz,
    FOREIGN KEY (region, work_order_id) REFERENCES sap.service_orders (region, work_order_id),
    CHECK (state <> 'exported' OR (sap_confirmation IS NOT NULL AND exported_at IS NOT NULL)),
    CHECK ((state = 'dead') = (dead_reason IS NOT NULL))
);
CREATE INDEX service_confirmations_due_idx ON sap.service_confirmations (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX service_confirmations_exported_idx
    ON sap.service_confirmations (region, exported_at);

-- Where each delta poll stands: the newest SAP change stamp read (polls re-read from it,
-- inclusive: changes within one millisecond are not lost; a re-read changes nothing).
CREATE TABLE sap.watermarks (
    name        text PRIMARY KEY,
    value       timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Events this service emits (service_order.changed), written in the transaction that
-- records SAP's change; the relay publishes them (cloud/events/outbox.py).
CREATE TABLE sap.outbox (
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
CREATE INDEX outbox_unpublished_idx ON sap.outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at_idx ON sap.outbox (published_at)
    WHERE published_at IS NOT NULL;

-- Reconciliations count service orders and confirmations too.
ALTER TABLE sap.reconciliations
    ADD COLUMN service_orders_sent int NOT NULL DEFAULT 0,
    ADD COLUMN service_orders_in_sap int NOT NULL DEFAULT 0,
    ADD COLUMN confirmations_sent int NOT NULL DEFAULT 0,
    ADD COLUMN confirmations_in_sap int NOT NULL DEFAULT 0;
