-- Issue 20: plan changes asked for through support and approved by staff
-- (ticket.plan_change_approved). The account keeps one current plan (accounts.plan_code,
-- which billing reads when it rates); each change is recorded here with the date it
-- takes effect and applied on that date (at once when the date is today or past, else by
-- the daily sweep), so the account's plan history is these rows. Billing has no plan
-- history of its own: a bill is rated at the plan the account has when it is rated.
CREATE TABLE customers.plan_changes (
    id              bigserial PRIMARY KEY,
    account_id      text NOT NULL REFERENCES customers.accounts (id),
    plan_code       text NOT NULL CHECK (plan_code ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    effective_from  date NOT NULL,
    -- Where it came from (support ticket 41: "ticket:41") and who approved it.
    source          text NOT NULL CHECK (length(source) BETWEEN 1 AND 64),
    approved_by     text NOT NULL CHECK (length(approved_by) BETWEEN 1 AND 64),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    applied_at      timestamptz,
    UNIQUE (source)
);
CREATE INDEX plan_changes_due_idx ON customers.plan_changes (effective_from)
    WHERE applied_at IS NULL;

-- Events consumed (ticket.plan_change_approved), once each.
CREATE TABLE customers.inbox (
    event_id    uuid PRIMARY KEY,
    handled_at  timestamptz NOT NULL DEFAULT now()
);
