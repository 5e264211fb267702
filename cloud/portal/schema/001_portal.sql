-- The portal's own records (issue 15). view_audit: every time a member of staff opens a
-- customer's pages read-only ("see what the customer sees"), who, as what role, which
-- account (and site), what page and from which client address. Appended, never changed.
-- No foreign keys: accounts and sites live in other services' schemas. The CHECKs repeat
-- cloud/portal/audit.py's bounds, so no other path stores what it would refuse.
CREATE TABLE portal.view_audit (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor_subject  text NOT NULL CHECK (length(actor_subject) BETWEEN 1 AND 100),
    actor_role     text NOT NULL
                   CHECK (actor_role IN ('admin', 'operator', 'support', 'mosie', 'customer')),
    region         text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    account_id     text NOT NULL CHECK (account_id ~ '^acc_[0-9a-f]{32}$'),
    site_id        int CHECK (site_id >= 1),
    what           text NOT NULL CHECK (length(what) BETWEEN 1 AND 200),
    address        text CHECK (length(address) BETWEEN 1 AND 64)
);
-- A region's office reads its region's newest views; anyone, one account's; admins,
-- everything's newest.
CREATE INDEX view_audit_region_at_idx ON portal.view_audit (region, at);
CREATE INDEX view_audit_account_at_idx ON portal.view_audit (account_id, at);
CREATE INDEX view_audit_at_idx ON portal.view_audit (at);
