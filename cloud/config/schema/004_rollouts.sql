-- Staged rollouts (issue 18): one config change to many gateways in waves (a canary,
-- then larger waves), stopped automatically when a wave fails, resumed, aborted or
-- rolled back. The state machine is cloud/config/rollouts.py; the versions a rollout
-- signs are ordinary rows of config.desired (created_by the rollout's creator).
CREATE TABLE config.rollouts (
    id                   bigserial PRIMARY KEY,
    region               text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    state                text NOT NULL
                         CHECK (state IN ('running', 'paused', 'aborted', 'completed', 'rolled_back')),
    detail               text NOT NULL DEFAULT '',
    profile              jsonb NOT NULL,
    -- device profile name -> setting -> value
    settings             jsonb NOT NULL,
    unverified           text[] NOT NULL DEFAULT '{}',
    target               jsonb NOT NULL,
    waves                int[] NOT NULL,
    current_wave         int NOT NULL DEFAULT 0,
    accepted_through     int NOT NULL DEFAULT -1,
    failure_threshold    double precision NOT NULL CHECK (failure_threshold BETWEEN 0 AND 1),
    on_failure           text NOT NULL CHECK (on_failure IN ('pause', 'abort')),
    wave_timeout_s       double precision NOT NULL CHECK (wave_timeout_s > 0),
    override_unverified  boolean NOT NULL DEFAULT false,
    override_reason      text,
    reason               text NOT NULL,
    created_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rollouts_region_idx ON config.rollouts (region, id DESC);

CREATE TABLE config.rollout_gateways (
    rollout_id        bigint NOT NULL REFERENCES config.rollouts (id),
    gateway_id        text NOT NULL,
    -- the gateway's place in the rollout's order (the canary first)
    position          int NOT NULL,
    wave              int NOT NULL,
    status            text NOT NULL CHECK (status IN ('waiting', 'pending', 'applied', 'failed',
                          'timed_out', 'superseded', 'deferred', 'skipped')),
    base_version      int,
    version           int,
    pushed_at         timestamptz,
    detail            text NOT NULL DEFAULT '',
    rollback_status   text CHECK (rollback_status IN ('pending', 'applied', 'failed', 'skipped')),
    rollback_version  int,
    rollback_detail   text NOT NULL DEFAULT '',
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rollout_id, gateway_id)
);
CREATE INDEX rollout_gateways_gateway_idx ON config.rollout_gateways (gateway_id);

-- Who did what to a rollout, when, why, and what came of it (the loop's own stops too).
-- Append-only, like config.audit.
CREATE TABLE config.rollout_log (
    id          bigserial PRIMARY KEY,
    rollout_id  bigint NOT NULL REFERENCES config.rollouts (id),
    region      text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    outcome     text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX rollout_log_rollout_idx ON config.rollout_log (rollout_id, id);
CREATE TRIGGER rollout_log_append_only BEFORE UPDATE OR DELETE ON config.rollout_log
    FOR EACH ROW EXECUTE FUNCTION config.audit_is_append_only();
