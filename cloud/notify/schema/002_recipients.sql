-- Notify's own view of who can be told (issue 16, point 4), fed by events only: customer
-- accounts from customer.created/updated (the account's e-mail is where its users' mail
-- goes), people from user.* (role, home region, account; identity never puts an e-mail
-- on them), a staff member's address from user.contact_changed. Nothing here joins
-- another schema. ``source_at`` is the occurred_at of the event a row was last taken
-- from: an older event arriving late (a retry) changes nothing.

CREATE TABLE notify.accounts (
    account_id  text PRIMARY KEY CHECK (account_id ~ '^acc_[0-9a-f]{32}$'),
    region      text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    name        text NOT NULL,
    email       text NOT NULL,
    plan_code   text,
    status      text NOT NULL CHECK (status IN ('active', 'suspended', 'closed')),
    source_at   timestamptz NOT NULL
);
CREATE INDEX accounts_region_idx ON notify.accounts (region, plan_code)
    WHERE status <> 'closed';

CREATE TABLE notify.people (
    user_id      text PRIMARY KEY CHECK (user_id ~ '^usr_[0-9a-f]{32}$'),
    role         text NOT NULL,
    region       text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    account_id   text CHECK (account_id ~ '^acc_[0-9a-f]{32}$'),
    disabled     boolean NOT NULL DEFAULT false,
    source_at    timestamptz NOT NULL,
    -- Staff only (user.contact_changed); a customer's mail goes to their account's.
    email        text,
    email_at     timestamptz
);
CREATE INDEX people_account_idx ON notify.people (account_id) WHERE NOT disabled;
CREATE INDEX people_role_idx ON notify.people (region, role) WHERE NOT disabled;

-- Events notify has handled (people, accounts, alarms): an effect applies once per event
-- id. (``notify.inbox`` is people's inbox, hence the name.)
CREATE TABLE notify.handled_events (
    event_id    uuid PRIMARY KEY,
    handled_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per notification made from an alarm's event: how long after the alarm was
-- raised (escalated, cleared) it was created (what the issue asks recorded: trip to notification; the trip
-- to the raise is the alerts service's, in its alarm's history).
CREATE TABLE notify.alarm_notifications (
    notification_id  uuid PRIMARY KEY,
    event_id         uuid NOT NULL,
    event_name       text NOT NULL,
    region           text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    alarm_id         bigint NOT NULL,
    rule_id          text NOT NULL,
    audience         text NOT NULL,
    recipients       int NOT NULL CHECK (recipients >= 0),
    -- When the alarm changed: raised (or escalated, cleared); the event's ``at``.
    alarm_at         timestamptz NOT NULL,
    notified_at      timestamptz NOT NULL,
    latency_ms       bigint GENERATED ALWAYS AS
                     ((extract(epoch FROM (notified_at - alarm_at)) * 1000)::bigint) STORED
);
CREATE INDEX alarm_notifications_alarm_idx ON notify.alarm_notifications (alarm_id);
