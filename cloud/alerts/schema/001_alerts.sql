-- Alarms of the alerts service (issue 16): one row per episode of one rule on one subject
-- (a site, one of its gateways, or one device of a gateway), through the ISA-18.2 lifecycle
-- of cloud/alerts/lifecycle.py. An episode opens on a raise with no open alarm for its
-- subject and closes in state 'normal' (closed_at set); a later raise opens a new row.
-- Ids say their region (cloud/regional_ids.py). region, site_id and account_id (the site's
-- customer account when the raiser knew it) are what cloud.scope filters every read by.
CREATE SEQUENCE alerts.alarms_id_seq AS bigint;

CREATE TABLE alerts.alarms (
    id                bigint PRIMARY KEY,
    region            text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    rule_id           text NOT NULL CHECK (length(rule_id) BETWEEN 1 AND 128),
    severity          text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'urgent')),
    site_id           int NOT NULL,
    gateway_id        text,
    device            text CHECK (device IS NULL OR gateway_id IS NOT NULL),
    account_id        text CHECK (account_id ~ '^acc_[0-9a-f]{32}$'),
    state             text NOT NULL CHECK (state IN ('normal', 'unacknowledged', 'acknowledged',
                          'rtn_unacknowledged', 'shelved', 'suppressed', 'out_of_service')),
    active            boolean NOT NULL,
    count             int NOT NULL CHECK (count >= 1),
    first_raised_at   timestamptz NOT NULL,
    last_seen_at      timestamptz NOT NULL,
    cleared_at        timestamptz,
    acked_by          text,
    acked_at          timestamptz,
    unacked_since     timestamptz,
    escalation_level  int NOT NULL DEFAULT 0 CHECK (escalation_level >= 0),
    escalated_at      timestamptz,
    shelved_until     timestamptz,
    shelved_by        text,
    shelve_reason     text,
    suppressed        boolean NOT NULL DEFAULT false,
    out_of_service    boolean NOT NULL DEFAULT false,
    title             text NOT NULL,
    detail            jsonb NOT NULL DEFAULT '{}',
    closed_at         timestamptz,
    CHECK ((state = 'normal') = (closed_at IS NOT NULL)),
    CHECK ((acked_by IS NULL) = (acked_at IS NULL)),
    CHECK (state <> 'shelved' OR shelved_until IS NOT NULL),
    CHECK (state <> 'suppressed' OR suppressed),
    CHECK (state <> 'out_of_service' OR out_of_service),
    CHECK (state <> 'unacknowledged' OR unacked_since IS NOT NULL)
);
-- At most one open alarm per rule and subject, however many raise it at once: a second
-- raiser's INSERT ... ON CONFLICT waits for the first and then counts into its row.
CREATE UNIQUE INDEX alarms_one_open_idx ON alerts.alarms (rule_id, site_id, gateway_id, device)
    NULLS NOT DISTINCT WHERE closed_at IS NULL;
CREATE INDEX alarms_region_idx ON alerts.alarms (region, id DESC);
CREATE INDEX alarms_account_idx ON alerts.alarms (account_id, id DESC) WHERE account_id IS NOT NULL;
CREATE INDEX alarms_open_site_idx ON alerts.alarms (site_id) WHERE closed_at IS NULL;
CREATE INDEX alarms_open_gateway_idx ON alerts.alarms (gateway_id) WHERE closed_at IS NULL;
-- The sweepers' candidates: escalation (unacknowledged) and shelves whose time is up.
CREATE INDEX alarms_unacked_idx ON alerts.alarms (unacked_since) WHERE state = 'unacknowledged';
CREATE INDEX alarms_shelved_idx ON alerts.alarms (shelved_until) WHERE state = 'shelved';

-- Every transition of every alarm, written in the transaction that makes it: who (NULL: the
-- system, i.e. a rule, the clock, a gateway's presence), when, from and to which state.
CREATE TABLE alerts.alarm_history (
    id          bigserial PRIMARY KEY,
    alarm_id    bigint NOT NULL REFERENCES alerts.alarms (id),
    at          timestamptz NOT NULL,
    action      text NOT NULL,
    actor       text,
    from_state  text NOT NULL,
    to_state    text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alarm_history_alarm_idx ON alerts.alarm_history (alarm_id, id);
-- Flood metrics count annunciations: transitions into 'unacknowledged' from another state.
CREATE INDEX alarm_history_annunciated_idx ON alerts.alarm_history (at)
    WHERE to_state = 'unacknowledged' AND from_state <> 'unacknowledged';

-- Masks that outlive any one alarm, so an alarm raised under them starts hidden: gateways
-- offline (their devices' alarms are suppressed by design) and sites out of service
-- (under a technician's work, set by dispatch).
CREATE TABLE alerts.suppressed_gateways (
    gateway_id  text PRIMARY KEY,
    since       timestamptz NOT NULL
);
CREATE TABLE alerts.sites_out_of_service (
    site_id     int PRIMARY KEY,
    actor       text,
    since       timestamptz NOT NULL
);
