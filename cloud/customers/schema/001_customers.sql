-- Customer accounts, their contacts, their sites' installation records, device
-- warranties and billing-meter replacements (issue 13). Sites themselves are the
-- registry's: a site is named here by (region, site_id), with no foreign key across
-- schemas; which account owns a site is registry.sites.account_id. The CHECKs repeat the
-- API's bounds, so a path around the API cannot store what it would refuse.

CREATE TABLE customers.accounts (
    id          text PRIMARY KEY CHECK (id ~ '^acc_[0-9a-f]{32}$'),
    region      text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email       text NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND email LIKE '%_@_%'),
    plan_code   text CHECK (plan_code ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    status      text NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'suspended', 'closed')),
    user_id     text UNIQUE CHECK (user_id ~ '^usr_[0-9a-f]{32}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_region_idx ON customers.accounts (region, id);

CREATE TABLE customers.contacts (
    id          bigserial PRIMARY KEY,
    account_id  text NOT NULL REFERENCES customers.accounts (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email       text CHECK (length(email) BETWEEN 3 AND 254 AND email LIKE '%_@_%'),
    phone       text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    role        text NOT NULL CHECK (role IN ('owner', 'billing', 'technical', 'other')),
    "primary"   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (email IS NOT NULL OR phone IS NOT NULL)
);
CREATE INDEX contacts_account_idx ON customers.contacts (account_id, id);
-- One primary contact per account.
CREATE UNIQUE INDEX contacts_one_primary_idx ON customers.contacts (account_id)
    WHERE "primary";

CREATE TABLE customers.installations (
    region            text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    site_id           int NOT NULL CHECK (site_id >= 1),
    pv_kwp            numeric(8, 3) NOT NULL CHECK (pv_kwp > 0 AND pv_kwp <= 10000),
    tilt_deg          numeric(4, 1) NOT NULL CHECK (tilt_deg BETWEEN 0 AND 90),
    azimuth_deg       numeric(4, 1) NOT NULL CHECK (azimuth_deg BETWEEN 0 AND 360),
    battery_kwh       numeric(8, 3) NOT NULL CHECK (battery_kwh BETWEEN 0 AND 10000),
    network_operator  text NOT NULL CHECK (length(network_operator) BETWEEN 1 AND 100),
    tariff_zone       text NOT NULL CHECK (length(tariff_zone) BETWEEN 1 AND 32),
    installed_on      date NOT NULL CHECK (installed_on BETWEEN '1990-01-01' AND '2100-12-31'),
    warranty_until    date NOT NULL CHECK (warranty_until <= '2100-12-31'),
    billing_meter     text NOT NULL CHECK (billing_meter ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (region, site_id),
    CHECK (warranty_until >= installed_on)
);

CREATE TABLE customers.device_warranties (
    region          text NOT NULL,
    site_id         int NOT NULL,
    serial          text NOT NULL CHECK (serial ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    kind            text NOT NULL CHECK (kind IN (
                        'inverter', 'battery', 'meter', 'panel', 'isolator', 'gateway', 'other')),
    warranty_until  date NOT NULL CHECK (warranty_until BETWEEN '1990-01-01' AND '2100-12-31'),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (region, site_id, serial),
    FOREIGN KEY (region, site_id) REFERENCES customers.installations (region, site_id)
);

CREATE TABLE customers.meter_replacements (
    id                bigserial PRIMARY KEY,
    region            text NOT NULL,
    site_id           int NOT NULL,
    old_serial        text NOT NULL CHECK (old_serial ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    new_serial        text NOT NULL CHECK (new_serial ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    replaced_at       timestamptz NOT NULL,
    -- Both registers, kWh to the watt-hour: billing closes the old meter at the first and
    -- opens the new one at the second.
    old_register_kwh  numeric(12, 3) NOT NULL CHECK (old_register_kwh >= 0),
    new_register_kwh  numeric(12, 3) NOT NULL CHECK (new_register_kwh >= 0),
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (region, site_id) REFERENCES customers.installations (region, site_id),
    CHECK (new_serial <> old_serial)
);
CREATE INDEX meter_replacements_site_idx
    ON customers.meter_replacements (region, site_id, replaced_at);
