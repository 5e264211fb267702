-- From an alarm to a repair verified by telemetry (issue 17): what the dispatch service
-- keeps of other services' events to raise, assign, verify and reopen work orders by
-- itself. Each table is fed by one event stream; the newest event wins where a record
-- is replaced.

-- The site's IANA time zone from the registry's gateway events: which jurisdiction of
-- the region's business calendar the site is in (SLA timers, licences).
ALTER TABLE dispatch.sites ADD COLUMN time_zone text CHECK (length(time_zone) <= 64);

-- Technicians as the employees service announces them (employee.changed): the whole
-- record (cloud.dispatch.assignment.Technician loads it), the newest event wins.
CREATE TABLE dispatch.technicians (
    employee_no  text PRIMARY KEY CHECK (employee_no ~ '^E[0-9]{1,9}$'),
    region       text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    active       boolean NOT NULL,
    record       jsonb NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX technicians_region_idx ON dispatch.technicians (region) WHERE active;

-- The alert policies' memory (cloud.dispatch.policies.PolicyState), one row per region,
-- locked by every alert event and sweep of the region so raises are counted once and in
-- order. ``version`` counts writes.
CREATE TABLE dispatch.policy_state (
    region      text PRIMARY KEY CHECK (region IN ('au', 'us', 'es')),
    state       jsonb,
    version     bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Which policy raised a work order: one open (neither closed nor cancelled) per policy
-- and site; closing or cancelling it releases the policy for the site.
CREATE TABLE dispatch.policy_orders (
    work_order_id  bigint PRIMARY KEY REFERENCES dispatch.work_orders (id) ON DELETE CASCADE,
    policy         text NOT NULL CHECK (length(policy) BETWEEN 1 AND 64),
    site_id        bigint NOT NULL,
    request_id     uuid NOT NULL
);
CREATE INDEX policy_orders_site_idx ON dispatch.policy_orders (site_id, policy);

-- The site's array (site.installation_changed): the clear-sky expectation of a repaired
-- site. The newest record wins.
CREATE TABLE dispatch.installations (
    site_id      bigint PRIMARY KEY,
    region       text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    pv_kwp       numeric NOT NULL CHECK (pv_kwp > 0),
    tilt_deg     numeric NOT NULL CHECK (tilt_deg BETWEEN 0 AND 90),
    azimuth_deg  numeric NOT NULL CHECK (azimuth_deg BETWEEN 0 AND 360),
    updated_at   timestamptz NOT NULL
);

-- Every alarm of a site as the alerts service's alert.* events leave it: whether it is
-- active and serious (high or urgent). A resolved job's fault has cleared when its
-- origin alarm is inactive; it is verified only with no serious alarm active on the
-- site; a raise of its rule within a week of verification reopens it. Newest event wins.
CREATE TABLE dispatch.site_alarms (
    alarm_id   bigint PRIMARY KEY,
    site_id    bigint NOT NULL,
    rule_id    text NOT NULL CHECK (length(rule_id) BETWEEN 1 AND 64),
    serious    boolean NOT NULL,
    active     boolean NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX site_alarms_active_idx ON dispatch.site_alarms (site_id) WHERE active;

-- A resolved work order awaiting verification (a row per resolve; the job's own row is
-- the truth for its state): when it was resolved, each inverter's first and last
-- lifetime pv_wh reading since then ({device: {first, first_at, last, last_at}}), and
-- the latest verdict (why it is not verified yet, for the board).
CREATE TABLE dispatch.verification (
    work_order_id  bigint PRIMARY KEY REFERENCES dispatch.work_orders (id) ON DELETE CASCADE,
    site_id        bigint NOT NULL,
    resolved_at    timestamptz NOT NULL,
    counters       jsonb NOT NULL DEFAULT '{}',
    verdict        text CHECK (length(verdict) <= 500),
    judged_at      timestamptz
);
CREATE INDEX verification_site_idx ON dispatch.verification (site_id);
