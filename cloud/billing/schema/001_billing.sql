-- Billing (issue 19, points 2 and 3): the hourly kWh ledger, billing cycles, the issued
-- documents and their numbering, the AU grid pool carried per site, and the outbox.
-- Sites, accounts and meters are other services' records: named here by (region,
-- site_id) and account id, with no foreign key across schemas. Amounts are exact
-- numerics, energy integer milliwatt-hours.

-- A billing cycle: one region's billing period, run once (its advisory lock and the
-- UNIQUE make a second run a no-op). ``skipped`` keeps every site left out and why.
CREATE TABLE billing.cycles (
    id            bigserial PRIMARY KEY,
    region        text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    first_day     date NOT NULL,
    last_day      date NOT NULL,
    state         text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'billed')),
    run_by        text NOT NULL CHECK (length(run_by) BETWEEN 1 AND 200),
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    invoiced      int NOT NULL DEFAULT 0,
    skipped       jsonb NOT NULL DEFAULT '[]'::jsonb,
    UNIQUE (region, first_day, last_day),
    CHECK (last_day >= first_day),
    CHECK ((state = 'billed') = (finished_at IS NOT NULL))
);

-- The next document number per region and year of issue: taken under the row's lock in
-- the transaction that issues the document, so numbers are gap-free.
CREATE TABLE billing.number_counters (
    region        text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    year          int NOT NULL CHECK (year BETWEEN 2000 AND 9999),
    last_number   int NOT NULL CHECK (last_number BETWEEN 0 AND 9999999),
    PRIMARY KEY (region, year)
);

-- Issued documents: never deleted nor changed in amount; a cancellation or a note is a
-- new document naming the one it corrects. Amounts are never negative (the kind says
-- which way they move the balance: cloud/events/invoices.py).
CREATE TABLE billing.invoices (
    id            bigserial PRIMARY KEY,
    number        text NOT NULL UNIQUE CHECK (number ~ '^(AU|US|ES)-[0-9]{4}-[0-9]{7}$'),
    kind          text NOT NULL
                      CHECK (kind IN ('invoice', 'credit_note', 'debit_note', 'cancellation')),
    region        text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    account_id    text NOT NULL CHECK (account_id ~ '^acc_[0-9a-f]{32}$'),
    site_id       int NOT NULL CHECK (site_id >= 1),
    cycle_id      bigint REFERENCES billing.cycles (id),
    first_day     date NOT NULL,
    last_day      date NOT NULL,
    plan_code     text NOT NULL,
    tariff_zone   text NOT NULL,
    time_zone     text NOT NULL,
    contract_start date NOT NULL,
    -- The AU grid pool the period started with: a true-up re-reckons from it.
    pool_in_mwh   bigint NOT NULL DEFAULT 0 CHECK (pool_in_mwh >= 0),
    currency      text NOT NULL CHECK (currency IN ('AUD', 'USD', 'EUR')),
    net           numeric(16, 2) NOT NULL CHECK (net >= 0),
    tax           numeric(16, 2) NOT NULL CHECK (tax >= 0),
    gross         numeric(16, 2) NOT NULL CHECK (gross = net + tax),
    state         text NOT NULL DEFAULT 'issued' CHECK (state IN ('issued', 'cancelled')),
    reference_id  bigint REFERENCES billing.invoices (id),
    issued_at     timestamptz NOT NULL,
    issue_date    date NOT NULL,
    due_date      date NOT NULL CHECK (due_date >= issue_date),
    CHECK ((kind = 'invoice') = (reference_id IS NULL)),
    CHECK (last_day >= first_day)
);
-- One invoice per site and period; notes may be many.
CREATE UNIQUE INDEX invoices_one_per_period_idx ON billing.invoices (region, site_id, first_day)
    WHERE kind = 'invoice';
CREATE INDEX invoices_account_idx ON billing.invoices (account_id, issued_at);
CREATE INDEX invoices_reference_idx ON billing.invoices (reference_id);

-- A document's lines, as rated (cloud/billing/rating.py). Energy lines carry period,
-- kWh and unit price; percentage lines base and percent. On a note, kWh and net are the
-- difference's magnitudes (the note's kind gives the sign).
CREATE TABLE billing.invoice_lines (
    invoice_id    bigint NOT NULL REFERENCES billing.invoices (id),
    line_no       int NOT NULL CHECK (line_no >= 1),
    description_key text NOT NULL,
    first_day     date NOT NULL,
    last_day      date NOT NULL,
    period        text,
    kwh           numeric(18, 6),
    unit_price    numeric(12, 6),
    base          numeric(16, 2),
    percent       numeric(12, 8),
    net           numeric(16, 2) NOT NULL CHECK (net >= 0),
    tax           text NOT NULL,
    tax_percent   numeric(7, 4) NOT NULL,
    PRIMARY KEY (invoice_id, line_no)
);

-- A document's taxes per (tax, rate): amount = round_half_up(base * percent / 100).
CREATE TABLE billing.invoice_taxes (
    invoice_id    bigint NOT NULL REFERENCES billing.invoices (id),
    tax           text NOT NULL,
    percent       numeric(7, 4) NOT NULL,
    base          numeric(16, 2) NOT NULL CHECK (base >= 0),
    amount        numeric(16, 2) NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (invoice_id, tax, percent)
);

-- The ledger: one line per site hour ``[hour_start, hour_end)`` (UTC), the register
-- deltas it came from (mWh; estimated ones flagged), what was billable, the meters'
-- serials and device ids that answered, and the document that billed it. A true-up
-- inserts new lines and points the old ones at them (``superseded_by``); lines are
-- never updated otherwise nor deleted.
CREATE TABLE billing.ledger_lines (
    id              bigserial PRIMARY KEY,
    region          text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    site_id         int NOT NULL CHECK (site_id >= 1),
    hour_start      timestamptz NOT NULL,
    hour_end        timestamptz NOT NULL CHECK (hour_end > hour_start),
    forward_mwh     bigint NOT NULL CHECK (forward_mwh >= 0),
    reverse_mwh     bigint NOT NULL CHECK (reverse_mwh >= 0),
    export_mwh      bigint NOT NULL CHECK (export_mwh >= 0),
    pool_used_mwh   bigint NOT NULL CHECK (pool_used_mwh >= 0),
    billable_mwh    bigint NOT NULL CHECK (billable_mwh >= 0),
    estimated       boolean NOT NULL,
    billing_meter   text NOT NULL,
    billing_device  int,
    grid_meter      text,
    grid_device     int,
    invoice_id      bigint NOT NULL REFERENCES billing.invoices (id),
    -- Deferred: a true-up points the old lines at the new ones before inserting them
    -- (one current line per hour at every moment).
    superseded_by   bigint REFERENCES billing.ledger_lines (id) DEFERRABLE INITIALLY DEFERRED,
    created_at      timestamptz NOT NULL DEFAULT now()
);
-- At most one current line per site hour.
CREATE UNIQUE INDEX ledger_current_idx ON billing.ledger_lines (region, site_id, hour_start)
    WHERE superseded_by IS NULL;
CREATE INDEX ledger_invoice_idx ON billing.ledger_lines (invoice_id);

-- The AU grid pool (decision 119) after the last billed hour of a site, carried into its
-- next period. A true-up re-reckons from the pool its period started with (the invoice's
-- ``pool_in_mwh``) and leaves this one as it is.
CREATE TABLE billing.grid_pools (
    region        text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    site_id       int NOT NULL CHECK (site_id >= 1),
    pool_mwh      bigint NOT NULL CHECK (pool_mwh >= 0),
    through       timestamptz NOT NULL,
    PRIMARY KEY (region, site_id)
);
