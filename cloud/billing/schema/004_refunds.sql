-- Refunds (issue 19 point 4): an account's credit (payments and credit documents not
-- allocated to any charge) paid back through the payment provider. A refund draws on
-- that credit through allocation rows pointing at it instead of at a charge, so what a
-- payment or a credit document has left is still "amount - Σ its allocations", and the
-- balance is Σ charges - Σ credits - Σ payments + Σ refunds. Never updated nor deleted.
CREATE TABLE billing.refunds (
    id                  bigserial PRIMARY KEY,
    region              text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    account_id          text NOT NULL CHECK (account_id ~ '^acc_[0-9a-f]{32}$'),
    amount              numeric(16, 2) NOT NULL CHECK (amount > 0),
    currency            text NOT NULL CHECK (currency IN ('AUD', 'USD', 'EUR')),
    refunded_at         timestamptz NOT NULL,
    provider            text NOT NULL CHECK (length(provider) BETWEEN 1 AND 50),
    provider_reference  text NOT NULL CHECK (length(provider_reference) BETWEEN 1 AND 200),
    -- The caller's key: the same key again is the same refund (nothing more is paid).
    idempotency_key     text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    requested_by        text NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 200),
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_reference),
    UNIQUE (account_id, idempotency_key)
);
CREATE INDEX refunds_account_idx ON billing.refunds (account_id, refunded_at);

-- An allocation applies money to a charge (invoice_id) or pays out a refund (refund_id).
ALTER TABLE billing.allocations ALTER COLUMN invoice_id DROP NOT NULL;
ALTER TABLE billing.allocations ADD COLUMN refund_id bigint REFERENCES billing.refunds (id);
ALTER TABLE billing.allocations ADD CONSTRAINT allocations_one_target
    CHECK ((invoice_id IS NULL) <> (refund_id IS NULL));
CREATE INDEX allocations_refund_idx ON billing.allocations (refund_id);
