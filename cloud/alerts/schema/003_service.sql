-- The alerts service's own inputs (issue 16): what it knows of each gateway, and the rule
-- evaluator's memory.
--
-- Gateways as the registry announces them (gateway.registered / gateway.updated): the
-- site, region and the site's customer account an alarm of the gateway is filed under.
-- Kept by events only (services never call each other); the newest announcement wins.
CREATE TABLE alerts.gateways (
    gateway_id  text PRIMARY KEY,
    region      text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    site_id     int NOT NULL,
    account_id  text CHECK (account_id ~ '^acc_[0-9a-f]{32}$'),
    -- What a notice says of the site: its IANA zone and name (null in older events).
    time_zone   text,
    site_name   text CHECK (length(site_name) <= 200),
    updated_at  timestamptz NOT NULL
);

-- The evaluator's state (cloud.alerts.evaluate.EvaluatorState as JSON), one row per
-- region. A handler locks its region's row, feeds the event, and writes the state back in
-- the transaction that marks its inbox and changes the alarms, so a redelivered event
-- raises nothing twice and a crash loses nothing. ``version`` counts writes: a process
-- keeps the evaluator in memory while the version it wrote is still the stored one.
CREATE TABLE alerts.evaluator_state (
    region      text PRIMARY KEY CHECK (region IN ('au', 'us', 'es')),
    state       jsonb,
    version     bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
