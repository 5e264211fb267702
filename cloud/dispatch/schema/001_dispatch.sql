-- Work orders for field technicians (MOSIEs), issue 17: the order with its lifecycle
-- state (cloud/dispatch/lifecycle.py), its audit trail, what the technician records on
-- site (checklist ticks, notes, photos, parts, the customer's signature), the region's
-- parts stock, the idempotency keys of every change, and the sites as the registry
-- announced them. The CHECKs repeat the service's bounds, so a path around the service
-- cannot store what it would refuse.

CREATE TABLE dispatch.work_orders (
    -- Regional ids (cloud/regional_ids.py): the repository takes them from this sequence.
    id             bigserial PRIMARY KEY,
    region         text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    site_id        bigint NOT NULL CHECK (site_id >= 1),
    account_id     text,
    type           text NOT NULL CHECK (type IN ('isolator_fault', 'inverter_fault',
                       'battery_fault', 'production_shortfall', 'meter_replacement',
                       'inspection')),
    priority       text NOT NULL CHECK (priority IN ('P1', 'P2', 'P3', 'P4')),
    title          text NOT NULL CHECK (length(title) BETWEEN 3 AND 200),
    description    text NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    status         text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled',
                       'assigned', 'accepted', 'en_route', 'on_site', 'on_hold',
                       'cannot_complete', 'resolved', 'verified', 'closed', 'cancelled')),
    -- The technician's employee number while assigned.
    assignee       text CHECK (length(assignee) BETWEEN 1 AND 64),
    visits         int NOT NULL DEFAULT 0 CHECK (visits >= 0),
    reopen_count   int NOT NULL DEFAULT 0 CHECK (reopen_count >= 0),
    verified_at    timestamptz,
    sla_breached   text[] NOT NULL DEFAULT '{}'
                   CHECK (sla_breached <@ ARRAY['arrive_by', 'resolve_by']::text[]),
    -- The alarm that raised it (alert policies), none for one raised by hand.
    alarm_id       bigint,
    created_by     text NOT NULL CHECK (length(created_by) BETWEEN 1 AND 64),
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    -- SLA due times: computed elsewhere (the region's business calendar), kept here.
    arrive_by      timestamptz,
    resolve_by     timestamptz,
    -- Optimistic concurrency: + 1 on every change of the row.
    version        int NOT NULL DEFAULT 1 CHECK (version >= 1),
    CHECK (status NOT IN ('assigned', 'accepted', 'en_route', 'on_site') OR assignee IS NOT NULL),
    CHECK (status NOT IN ('verified', 'closed') OR verified_at IS NOT NULL)
);
-- The board (region × status) and a technician's list (assignee).
CREATE INDEX work_orders_region_status_idx ON dispatch.work_orders (region, status, id);
CREATE INDEX work_orders_assignee_idx ON dispatch.work_orders (assignee, status)
    WHERE assignee IS NOT NULL;

-- Every transition, as the lifecycle's audit record has it. ``assignee``: the technician
-- after it; ``resolve_by``: the order's due time when it was written, so a resolve is
-- judged against the SLA of its own visit even after a reopen restarts the timers.
CREATE TABLE dispatch.history (
    id             bigserial PRIMARY KEY,
    work_order_id  bigint NOT NULL REFERENCES dispatch.work_orders (id) ON DELETE CASCADE,
    at             timestamptz NOT NULL,
    actor          text NOT NULL CHECK (length(actor) BETWEEN 1 AND 64),
    role           text NOT NULL CHECK (role IN ('admin', 'operator', 'support', 'mosie',
                       'customer', 'system')),
    action         text NOT NULL CHECK (length(action) BETWEEN 1 AND 32),
    from_state     text,
    to_state       text NOT NULL,
    reason         text CHECK (length(reason) <= 500),
    assignee       text,
    resolve_by     timestamptz
);
CREATE INDEX history_order_idx ON dispatch.history (work_order_id, id);
-- Performance reads resolves and verifications by time.
CREATE INDEX history_action_at_idx ON dispatch.history (action, at);

-- Every change made with an idempotency key: the request's fingerprint and the answer,
-- committed with the change itself. A key belongs to its actor.
CREATE TABLE dispatch.idempotency_keys (
    actor          text NOT NULL CHECK (length(actor) BETWEEN 1 AND 64),
    key            text NOT NULL CHECK (key ~ '^[A-Za-z0-9_-]{8,100}$'),
    fingerprint    text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    operation      text NOT NULL CHECK (length(operation) BETWEEN 1 AND 32),
    work_order_id  bigint,
    response       jsonb,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (actor, key)
);
CREATE INDEX idempotency_keys_created_idx ON dispatch.idempotency_keys (created_at);

-- Checklist ticks, per visit: each arrival starts the checklist (the safety pre-start
-- above all) afresh.
CREATE TABLE dispatch.checklist_ticks (
    id             bigserial PRIMARY KEY,
    work_order_id  bigint NOT NULL REFERENCES dispatch.work_orders (id) ON DELETE CASCADE,
    visit          int NOT NULL CHECK (visit >= 1),
    task_id        text NOT NULL CHECK (task_id ~ '^[a-z][a-z0-9]*(-[a-z0-9]+)*$'
                       AND length(task_id) <= 64),
    by_actor       text NOT NULL CHECK (length(by_actor) BETWEEN 1 AND 64),
    at             timestamptz NOT NULL,
    photo_key      text CHECK (length(photo_key) BETWEEN 1 AND 200),
    note           text CHECK (length(note) BETWEEN 1 AND 1000),
    UNIQUE (work_order_id, visit, task_id)
);

CREATE TABLE dispatch.notes (
    id             bigserial PRIMARY KEY,
    work_order_id  bigint NOT NULL REFERENCES dispatch.work_orders (id) ON DELETE CASCADE,
    by_actor       text NOT NULL CHECK (length(by_actor) BETWEEN 1 AND 64),
    role           text NOT NULL,
    at             timestamptz NOT NULL,
    text           text NOT NULL CHECK (length(text) BETWEEN 1 AND 2000)
);
CREATE INDEX notes_order_idx ON dispatch.notes (work_order_id, id);

-- Photos' metadata; the bytes are in the photo storage under ``storage_key`` (made by
-- the service, never by a client).
CREATE TABLE dispatch.photos (
    id             bigserial PRIMARY KEY,
    work_order_id  bigint NOT NULL REFERENCES dispatch.work_orders (id) ON DELETE CASCADE,
    storage_key    text NOT NULL UNIQUE CHECK (length(storage_key) BETWEEN 1 AND 200),
    content_type   text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png',
                       'image/webp')),
    bytes          int NOT NULL CHECK (bytes >= 1),
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    by_actor       text NOT NULL CHECK (length(by_actor) BETWEEN 1 AND 64),
    at             timestamptz NOT NULL
);
CREATE INDEX photos_order_idx ON dispatch.photos (work_order_id, id);

-- The region's parts stock: never below zero (the service refuses, the CHECK too).
CREATE TABLE dispatch.parts_stock (
    region       text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    part_no      text NOT NULL CHECK (part_no ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    description  text NOT NULL DEFAULT '' CHECK (length(description) <= 200),
    quantity     int NOT NULL CHECK (quantity >= 0),
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (region, part_no)
);

CREATE TABLE dispatch.parts_used (
    id             bigserial PRIMARY KEY,
    work_order_id  bigint NOT NULL REFERENCES dispatch.work_orders (id) ON DELETE CASCADE,
    region         text NOT NULL,
    part_no        text NOT NULL,
    quantity       int NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    by_actor       text NOT NULL CHECK (length(by_actor) BETWEEN 1 AND 64),
    at             timestamptz NOT NULL,
    FOREIGN KEY (region, part_no) REFERENCES dispatch.parts_stock (region, part_no)
);
CREATE INDEX parts_used_order_idx ON dispatch.parts_used (work_order_id, id);

-- The customer's signature on completion, one per visit; the image is in the photo
-- storage like a photo.
CREATE TABLE dispatch.signatures (
    work_order_id  bigint NOT NULL REFERENCES dispatch.work_orders (id) ON DELETE CASCADE,
    visit          int NOT NULL CHECK (visit >= 1),
    signer_name    text NOT NULL CHECK (length(signer_name) BETWEEN 1 AND 200),
    storage_key    text NOT NULL UNIQUE CHECK (length(storage_key) BETWEEN 1 AND 200),
    content_type   text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png',
                       'image/webp')),
    bytes          int NOT NULL CHECK (bytes >= 1),
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    by_actor       text NOT NULL CHECK (length(by_actor) BETWEEN 1 AND 64),
    at             timestamptz NOT NULL,
    PRIMARY KEY (work_order_id, visit)
);

-- Sites and their gateways as the registry announces them (gateway.registered /
-- gateway.updated): a work order's region and account, and the gateways its workorder.*
-- events name (what holds apply to). The newest announcement wins.
CREATE TABLE dispatch.sites (
    site_id     bigint PRIMARY KEY,
    region      text NOT NULL,
    account_id  text,
    latitude    double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision CHECK (longitude BETWEEN -180 AND 180),
    updated_at  timestamptz NOT NULL
);

CREATE TABLE dispatch.site_gateways (
    gateway_id  text PRIMARY KEY,
    site_id     bigint NOT NULL,
    region      text NOT NULL,
    enabled     boolean NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX site_gateways_site_idx ON dispatch.site_gateways (site_id);
