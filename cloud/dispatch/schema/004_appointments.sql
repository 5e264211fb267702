-- Appointments (issue 17 point 3): the arrival windows offered to a work order's
-- customer, the window they confirmed, what was rescheduled, and the reminders sent.
-- Instants are UTC; ``site_zone`` is the zone the labels were written in.

-- An offer: the newest per work order is the live one (older ones stay as the record).
-- An offer may hold no windows (nobody free within the horizon): it is still kept, so
-- the sweep does not look again before it expires.
CREATE TABLE dispatch.appointment_offers (
    id             bigserial PRIMARY KEY,
    work_order_id  bigint NOT NULL REFERENCES dispatch.work_orders (id) ON DELETE CASCADE,
    site_zone      text NOT NULL CHECK (length(site_zone) BETWEEN 1 AND 64),
    offered_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL CHECK (expires_at > offered_at),
    -- offer (the flow or the sweep) or reschedule (the customer or staff asked).
    reason         text NOT NULL CHECK (reason IN ('offer', 'reschedule'))
);
CREATE INDEX appointment_offers_order_idx ON dispatch.appointment_offers (work_order_id, id);

-- The offer's windows, [starts, ends): arrival windows, earliest first.
CREATE TABLE dispatch.appointment_windows (
    offer_id     bigint NOT NULL REFERENCES dispatch.appointment_offers (id) ON DELETE CASCADE,
    starts       timestamptz NOT NULL,
    ends         timestamptz NOT NULL CHECK (ends > starts),
    label        text NOT NULL CHECK (length(label) BETWEEN 1 AND 80),
    past_sla     boolean NOT NULL,
    confirm_by   timestamptz NOT NULL CHECK (confirm_by <= starts),
    -- Who could take it when offered (employee numbers): for the office, not the customer.
    technicians  text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (offer_id, starts)
);

-- The confirmed appointment, one per work order while it stands. ``booked_until``: the
-- window's end plus the job's duration (arriving at the end, they must still finish):
-- the technician's booking assignment's clash filter sees. ``remind_at``: when the
-- next reminder falls due (appointments.next_reminder_at), None when none is left.
CREATE TABLE dispatch.appointments (
    work_order_id  bigint PRIMARY KEY REFERENCES dispatch.work_orders (id) ON DELETE CASCADE,
    offer_id       bigint NOT NULL REFERENCES dispatch.appointment_offers (id),
    starts         timestamptz NOT NULL,
    ends           timestamptz NOT NULL CHECK (ends > starts),
    booked_until   timestamptz NOT NULL CHECK (booked_until >= ends),
    label          text NOT NULL CHECK (length(label) BETWEEN 1 AND 80),
    site_zone      text NOT NULL,
    confirmed_at   timestamptz NOT NULL,
    confirmed_by   text NOT NULL CHECK (length(confirmed_by) BETWEEN 1 AND 64),
    confirmed_role text NOT NULL CHECK (confirmed_role IN ('admin', 'operator', 'support',
                       'customer')),
    remind_at      timestamptz
);
CREATE INDEX appointments_remind_idx ON dispatch.appointments (remind_at)
    WHERE remind_at IS NOT NULL;

-- Every appointment given up for a new offer: the old window, who asked and when.
CREATE TABLE dispatch.appointment_changes (
    id             bigserial PRIMARY KEY,
    work_order_id  bigint NOT NULL REFERENCES dispatch.work_orders (id) ON DELETE CASCADE,
    old_starts     timestamptz,
    old_ends       timestamptz,
    new_offer_id   bigint NOT NULL REFERENCES dispatch.appointment_offers (id),
    by_actor       text NOT NULL CHECK (length(by_actor) BETWEEN 1 AND 64),
    role           text NOT NULL,
    at             timestamptz NOT NULL,
    reason         text CHECK (length(reason) <= 500)
);
CREATE INDEX appointment_changes_order_idx ON dispatch.appointment_changes (work_order_id, id);

-- Reminders sent: once per appointment (its window's start) and lead, whatever retries.
CREATE TABLE dispatch.appointment_reminders (
    work_order_id  bigint NOT NULL REFERENCES dispatch.work_orders (id) ON DELETE CASCADE,
    starts         timestamptz NOT NULL,
    lead           interval NOT NULL,
    sent_at        timestamptz NOT NULL,
    PRIMARY KEY (work_order_id, starts, lead)
);
