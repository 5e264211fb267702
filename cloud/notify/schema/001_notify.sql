-- Notify (issue 16, point 4): the delivery side of alerts. Per-user preferences, webhook
-- endpoints, the inbox, and an outbox of e-mail and webhook deliveries with a record of
-- every attempt. Users are identity's opaque ids; nothing here joins another schema.

-- What each person chose; a person without a row gets the defaults (models.py).
CREATE TABLE notify.preferences (
    user_id             text PRIMARY KEY CHECK (user_id ~ '^usr_[0-9a-f]{32}$'),
    language            text NOT NULL CHECK (language IN ('en', 'es')),
    time_zone           text NOT NULL CHECK (length(time_zone) BETWEEN 1 AND 64),
    quiet_start         time,
    quiet_end           time,
    email_categories    text[] NOT NULL,
    webhook_categories  text[] NOT NULL,
    updated_at          timestamptz NOT NULL,
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL)),
    CHECK (quiet_start IS NULL OR quiet_start <> quiet_end)
);

-- Webhook endpoints of organisations. The secret is kept (it signs every request): it is
-- shown once at creation; during a rotation the previous one signs too until it expires.
CREATE TABLE notify.webhook_endpoints (
    id                     text PRIMARY KEY CHECK (id ~ '^whk_[0-9a-f]{32}$'),
    user_id                text NOT NULL CHECK (user_id ~ '^usr_[0-9a-f]{32}$'),
    region                 text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    url                    text NOT NULL CHECK (length(url) BETWEEN 8 AND 2048),
    description            text NOT NULL DEFAULT '' CHECK (length(description) <= 200),
    secret                 text NOT NULL,
    previous_secret        text,
    previous_secret_until  timestamptz,
    created_at             timestamptz NOT NULL,
    disabled_at            timestamptz,
    disabled_reason        text
);
CREATE INDEX webhook_endpoints_user_idx ON notify.webhook_endpoints (user_id)
    WHERE disabled_at IS NULL;

-- One person's inbox. ``seq`` orders entries (the list's cursor); ``change_no`` is the
-- live feed's cursor: the value of the owner's counter (inbox_feed) in the transaction
-- that posted or last changed the entry.
CREATE TABLE notify.inbox (
    id               uuid PRIMARY KEY,
    seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    change_no        bigint NOT NULL,
    notification_id  uuid NOT NULL,
    user_id          text NOT NULL CHECK (user_id ~ '^usr_[0-9a-f]{32}$'),
    region           text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    account_id       text CHECK (account_id ~ '^acc_[0-9a-f]{32}$'),
    kind             text NOT NULL,
    category         text NOT NULL CHECK (category IN ('safety', 'alarm', 'notice', 'offer')),
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'urgent')),
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body             text NOT NULL CHECK (length(body) <= 4000),
    link             text CHECK (length(link) <= 500),
    created_at       timestamptz NOT NULL,
    read_at          timestamptz,
    UNIQUE (notification_id, user_id)
);
CREATE INDEX inbox_user_idx ON notify.inbox (user_id, seq);
CREATE INDEX inbox_unread_idx ON notify.inbox (user_id, seq) WHERE read_at IS NULL;
CREATE INDEX inbox_changes_idx ON notify.inbox (user_id, change_no);

-- Per person, the number of the last change to their inbox. Every transaction that
-- changes an inbox increments its row first and holds the row lock to commit, so change
-- numbers become visible in order: a reader that has seen change n never sees a change
-- below n commit later (what a bare sequence would allow).
CREATE TABLE notify.inbox_feed (
    user_id      text PRIMARY KEY,
    last_change  bigint NOT NULL
);

-- The outbox of e-mail and webhook deliveries, written with the inbox entries in one
-- transaction. A worker claims due rows (a lease, so a crashed worker's rows come back),
-- sends outside any transaction, then records the outcome.
CREATE TABLE notify.deliveries (
    id               uuid PRIMARY KEY,
    notification_id  uuid NOT NULL,
    user_id          text NOT NULL CHECK (user_id ~ '^usr_[0-9a-f]{32}$'),
    region           text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    channel          text NOT NULL CHECK (channel IN ('email', 'webhook')),
    -- The e-mail address, or the webhook endpoint's id.
    destination      text NOT NULL,
    -- What concurrency is bounded by: 'smtp', or the webhook's host:port.
    destination_key  text NOT NULL,
    -- E-mail: JSON (to, subject, text, language); webhook: the exact body it signs.
    payload          text NOT NULL,
    created_at       timestamptz NOT NULL,
    next_attempt_at  timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         int NOT NULL DEFAULT 0,
    lease_until      timestamptz,
    last_error       text,
    finished_at      timestamptz,
    UNIQUE (notification_id, user_id, channel, destination)
);
CREATE INDEX deliveries_due_idx ON notify.deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX deliveries_notification_idx ON notify.deliveries (notification_id);

-- Every attempt, recorded when it starts (in the claim's transaction) and completed when
-- it ends; one a crash interrupted is closed as 'lost' when the delivery is claimed again.
CREATE TABLE notify.delivery_attempts (
    delivery_id  uuid NOT NULL REFERENCES notify.deliveries (id) ON DELETE CASCADE,
    attempt      int NOT NULL CHECK (attempt >= 1),
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    outcome      text CHECK (outcome IN ('sent', 'retry', 'failed', 'lost')),
    status_code  int,
    error        text,
    PRIMARY KEY (delivery_id, attempt)
);
