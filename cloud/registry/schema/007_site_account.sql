-- The customer account that owns a site (issue 13): an opaque id the customers service
-- hands out ("acc_" + uuid4 hex). No foreign key: accounts live in another service's
-- schema. Customers' queries are scoped by it (WHERE account_id = the caller's account).
ALTER TABLE registry.sites
    ADD COLUMN account_id text CHECK (account_id ~ '^acc_[0-9a-f]{32}$');
CREATE INDEX sites_account_idx ON registry.sites (account_id) WHERE account_id IS NOT NULL;
