-- Identity (issue 13): one global schema — users are few next to readings. Secrets are
-- never stored: passwords and PINs as argon2id hashes (a PIN peppered first), opaque
-- tokens and API keys as SHA-256 of the random value the holder keeps.
CREATE TABLE identity.users (
    id               text PRIMARY KEY CHECK (id ~ '^usr_[0-9a-f]{32}$'),
    email            text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    display_name     text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
    role             text NOT NULL
                     CHECK (role IN ('customer', 'mosie', 'support', 'operator', 'admin')),
    home_region      text NOT NULL CHECK (home_region IN ('au', 'us', 'es')),
    -- The customer account the user speaks for (customers service's opaque id).
    account_id       text CHECK (account_id ~ '^acc_[0-9a-f]{32}$'),
    -- Employees and MOSIEs: their number logs in with a PIN.
    employee_no      text UNIQUE CHECK (employee_no ~ '^[A-Z0-9][A-Z0-9-]{0,31}$'),
    -- A technician's broker identity (_tech/<name>), revoked when the user is disabled.
    broker_username  text UNIQUE CHECK (broker_username ~ '^_tech/'),
    password_hash    text,
    pin_hash         text,
    disabled_at      timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CHECK (employee_no IS NULL OR role <> 'customer'),
    CHECK (pin_hash IS NULL OR employee_no IS NOT NULL)
);
-- One account per address whatever its case (lookups use lower(email)).
CREATE UNIQUE INDEX users_email_idx ON identity.users (lower(email));

-- Rotating refresh tokens: each use marks the token used and issues a child in its
-- family; presenting a used one again revokes the whole family (reuse detection).
CREATE TABLE identity.refresh_tokens (
    token_hash         bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    family_id          uuid NOT NULL,
    user_id            text NOT NULL REFERENCES identity.users (id),
    parent_hash        bytea,
    issued_at          timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL,
    family_expires_at  timestamptz NOT NULL,
    used_at            timestamptz,
    revoked_at         timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON identity.refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON identity.refresh_tokens (user_id)
    WHERE revoked_at IS NULL;

-- Machine clients: pak_<id>_<secret>; the id is public, the whole key is hashed.
CREATE TABLE identity.api_keys (
    id            text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{16}$'),
    secret_hash   bytea NOT NULL CHECK (length(secret_hash) = 32),
    user_id       text NOT NULL REFERENCES identity.users (id),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    scopes        text[] NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_user_idx ON identity.api_keys (user_id);

-- One-time password-reset tokens (30 minutes, single use).
CREATE TABLE identity.password_resets (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id     text NOT NULL REFERENCES identity.users (id),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX password_resets_user_idx ON identity.password_resets (user_id);

-- Guessing throttles, shared by every API process: one row per submitted identifier
-- (kind password/pin/reset, key = SHA-256 of the identifier, whether or not it exists)
-- and per client address (kind address, key = the address or its IPv6 /64). A row is
-- locked FOR UPDATE while an attempt is counted, so concurrent attempts serialise.
CREATE TABLE identity.throttle (
    kind          text NOT NULL CHECK (kind IN ('password', 'pin', 'reset', 'address')),
    key           text NOT NULL CHECK (length(key) <= 64),
    window_start  timestamptz NOT NULL,
    attempts      int NOT NULL DEFAULT 0,
    locked_until  timestamptz,
    lockouts      int NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, key)
);
CREATE INDEX throttle_window_idx ON identity.throttle (window_start);

-- Logins, failures, lock-outs, resets, role changes, keys: who, what, from where. A
-- submitted identifier that matches no user is kept as a fingerprint (it may be a
-- password typed into the wrong field).
CREATE TABLE identity.audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    action      text NOT NULL,
    user_id     text,
    actor       text,
    identifier  text,
    address     text,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_user_idx ON identity.audit (user_id, id);
CREATE INDEX audit_at_idx ON identity.audit (at);
