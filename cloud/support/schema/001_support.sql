-- Support tickets (cloud/support): one row per ticket with its current state, and its
-- history — every state change, assignment, reply, approval and link is a row of
-- ticket_events, written in the transaction of the change; the ticket row is never
-- updated without one. A customer sees its account's tickets and the history lines
-- marked visible_to_customer (replies to it, state changes; not internal notes).
CREATE SEQUENCE support.ticket_seq;

CREATE TABLE support.tickets (
    id                 bigint PRIMARY KEY,
    region             text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    account_id         text NOT NULL,
    -- The business calendar's jurisdiction its SLA clocks count in (AU-NSW, ES, US-CA),
    -- fixed at creation from the linked site's installation (or the region's default).
    jurisdiction       text NOT NULL,
    language           text NOT NULL CHECK (language IN ('en', 'es')),
    kind               text NOT NULL
        CHECK (kind IN ('complaint', 'question', 'change_request', 'fault_report')),
    -- change_request only: what change.
    change             text CHECK (change IN ('plan_change', 'move', 'add_battery')),
    priority           text NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    state              text NOT NULL
        CHECK (state IN ('new', 'open', 'pending', 'resolved', 'closed')),
    subject            text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    description        text NOT NULL CHECK (length(description) <= 4000),
    created_by         text NOT NULL,
    assignee           text,
    -- plan_change: the plan asked for and from when; approved_* once staff approve it.
    plan_code          text CHECK (plan_code ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    plan_from          date,
    approved_at        timestamptz,
    approved_by        text,
    -- fault_report: the work order dispatch raised for it.
    work_order_id      bigint,
    work_requested_at  timestamptz,
    -- complaint: what the customer was told on resolution.
    outcome            text CHECK (length(outcome) <= 4000),
    reasons            text CHECK (length(reasons) <= 4000),
    created_at         timestamptz NOT NULL,
    first_response_at  timestamptz,
    resolved_at        timestamptz,
    closed_at          timestamptz,
    -- Due times as last computed (NULL while the clock is paused), for the queue's order.
    first_response_due timestamptz,
    resolution_due     timestamptz,
    updated_at         timestamptz NOT NULL,
    CHECK ((kind = 'change_request') = (change IS NOT NULL)),
    CHECK ((change = 'plan_change') = (plan_code IS NOT NULL AND plan_from IS NOT NULL)
           OR change IS DISTINCT FROM 'plan_change' AND plan_code IS NULL)
);
CREATE INDEX tickets_account_idx ON support.tickets (region, account_id, created_at DESC);
CREATE INDEX tickets_queue_idx ON support.tickets (region, state, resolution_due);
CREATE UNIQUE INDEX tickets_work_order_idx ON support.tickets (work_order_id)
    WHERE work_order_id IS NOT NULL;

CREATE TABLE support.ticket_events (
    id                  bigserial PRIMARY KEY,
    ticket_id           bigint NOT NULL REFERENCES support.tickets (id),
    at                  timestamptz NOT NULL,
    actor               text NOT NULL,
    actor_role          text NOT NULL,
    action              text NOT NULL CHECK (action IN (
        'created', 'state', 'assigned', 'reply', 'note', 'approved', 'work_requested',
        'work_order', 'reopened', 'linked')),
    from_state          text,
    to_state            text,
    note                text NOT NULL DEFAULT '' CHECK (length(note) <= 4000),
    visible_to_customer boolean NOT NULL
);
CREATE INDEX ticket_events_ticket_idx ON support.ticket_events (ticket_id, id);

-- What a ticket is about: the customer's sites, invoices (document numbers) and work
-- orders. A reference is text (a site id, INV-…, a work order id).
CREATE TABLE support.ticket_links (
    ticket_id  bigint NOT NULL REFERENCES support.tickets (id),
    kind       text NOT NULL CHECK (kind IN ('site', 'invoice', 'work_order')),
    ref        text NOT NULL CHECK (length(ref) BETWEEN 1 AND 64),
    PRIMARY KEY (ticket_id, kind, ref)
);
