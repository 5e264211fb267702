-- SAP integration (issue 19, point 5): what is to be sent to SAP, what SAP answered, and
-- the daily reconciliation. Filled by the event handlers (invoice.issued from billing,
-- customer.* from customers); emptied towards SAP by the exporter. Nothing here joins
-- another service's schema.

-- Events handled: an effect applies once per event id.
CREATE TABLE sap.inbox (
    event_id    uuid PRIMARY KEY,
    handled_at  timestamptz NOT NULL DEFAULT now()
);

-- One business partner per customer account: the state SAP should hold (the newest
-- event's name), and where sending it stands. ``external_id`` is what SAP's
-- BusinessPartnerIDByExtSystem carries (20 characters; the account id has 36).
CREATE TABLE sap.partners (
    account_id       text PRIMARY KEY CHECK (account_id ~ '^acc_[0-9a-f]{32}$'),
    region           text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    external_id      text NOT NULL UNIQUE CHECK (length(external_id) = 20),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    desired_at       timestamptz NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'exported', 'dead')),
    attempts         int NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_id         uuid,
    lease_until      timestamptz,
    -- The last attempt got no answer: SAP may hold it; it is queried before any resend.
    outcome_unknown  boolean NOT NULL DEFAULT false,
    sap_partner      text,
    sap_customer     text,
    last_error       text,
    dead_reason      text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    exported_at      timestamptz,
    dead_at          timestamptz,
    CHECK (state <> 'exported' OR (sap_partner IS NOT NULL AND exported_at IS NOT NULL)),
    CHECK ((state = 'dead') = (dead_reason IS NOT NULL))
);
CREATE INDEX partners_due_idx ON sap.partners (next_attempt_at) WHERE state = 'pending';
CREATE INDEX partners_exported_idx ON sap.partners (region, exported_at);

-- One row per issued document (invoice, credit note, debit note, cancellation), keyed by
-- region and our number: the document SAP must hold exactly once as an FI-AR journal
-- entry carrying ``number`` in its reference field.
CREATE TABLE sap.documents (
    id               bigserial PRIMARY KEY,
    region           text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    number           text NOT NULL,
    kind             text NOT NULL
                         CHECK (kind IN ('invoice', 'credit_note', 'debit_note', 'cancellation')),
    account_id       text NOT NULL CHECK (account_id ~ '^acc_[0-9a-f]{32}$'),
    issue_date       date NOT NULL,
    currency         text NOT NULL CHECK (currency IN ('AUD', 'USD', 'EUR')),
    gross            numeric(16, 2) NOT NULL CHECK (gross >= 0),
    payload          jsonb NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'exported', 'dead')),
    attempts         int NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_id         uuid,
    lease_until      timestamptz,
    outcome_unknown  boolean NOT NULL DEFAULT false,
    sap_company_code text,
    sap_fiscal_year  text,
    sap_document     text,
    warnings         text,
    last_error       text,
    dead_reason      text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    exported_at      timestamptz,
    dead_at          timestamptz,
    UNIQUE (region, number),
    CHECK (state <> 'exported' OR (sap_document IS NOT NULL AND exported_at IS NOT NULL)),
    CHECK ((state = 'dead') = (dead_reason IS NOT NULL))
);
CREATE INDEX documents_due_idx ON sap.documents (next_attempt_at) WHERE state = 'pending';
CREATE INDEX documents_day_idx ON sap.documents (region, issue_date);
CREATE INDEX documents_account_idx ON sap.documents (account_id) WHERE state = 'pending';

-- A reconciliation of one region's day: what SAP holds against what was sent. ``details``
-- lists the findings (missing, extra, mismatched: documents and partners).
CREATE TABLE sap.reconciliations (
    id                bigserial PRIMARY KEY,
    region            text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    day               date NOT NULL,
    ran_at            timestamptz NOT NULL DEFAULT now(),
    documents_sent    int NOT NULL,
    documents_in_sap  int NOT NULL,
    partners_sent     int NOT NULL,
    partners_in_sap   int NOT NULL,
    missing           int NOT NULL,
    extra             int NOT NULL,
    mismatched        int NOT NULL,
    ok                boolean NOT NULL,
    details           jsonb NOT NULL
);
CREATE INDEX reconciliations_day_idx ON sap.reconciliations (region, day, ran_at DESC);
