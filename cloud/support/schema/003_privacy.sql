-- Issue 20 point 6: privacy requests are tickets of kind data_export or data_erasure.
-- An approved export is one archive per ticket, downloadable by the account until it
-- expires; an erasure leaves one record per ticket with counts per service (what was
-- erased, what law keeps) and no personal data: the account id is opaque.
ALTER TABLE support.tickets DROP CONSTRAINT tickets_kind_check;
ALTER TABLE support.tickets ADD CONSTRAINT tickets_kind_check CHECK (kind IN (
    'complaint', 'question', 'change_request', 'fault_report', 'data_export',
    'data_erasure'));

CREATE TABLE support.privacy_exports (
    ticket_id   bigint PRIMARY KEY REFERENCES support.tickets (id),
    region      text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    account_id  text NOT NULL,
    archive     bytea NOT NULL CHECK (length(archive) <= 16777216),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL CHECK (expires_at > created_at)
);

CREATE TABLE support.erasures (
    ticket_id   bigint PRIMARY KEY REFERENCES support.tickets (id),
    region      text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    account_id  text NOT NULL,
    erased_at   timestamptz NOT NULL,
    erased_by   text NOT NULL,
    -- {"customers": {"erased": {"contacts": 2}, "kept": {"account_id": 1}}, ...}
    counts      jsonb NOT NULL
);
CREATE INDEX erasures_account_idx ON support.erasures (region, account_id);
