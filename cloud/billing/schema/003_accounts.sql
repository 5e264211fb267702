-- Accounts (issue 19 point 4): payments, their allocation to documents, cancellations
-- and overdue reminders. Balances are never stored: an account's balance is Σ charges
-- (invoices, debit notes) − Σ credits (credit notes, cancellations) − Σ payments, per
-- currency; a document's outstanding is its gross − Σ allocations to it.

-- A payment received. The provider's reference is unique per provider, so recording the
-- same payment twice stores it once.
CREATE TABLE billing.payments (
    id                  bigserial PRIMARY KEY,
    region              text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    account_id          text NOT NULL CHECK (account_id ~ '^acc_[0-9a-f]{32}$'),
    amount              numeric(16, 2) NOT NULL CHECK (amount > 0),
    currency            text NOT NULL CHECK (currency IN ('AUD', 'USD', 'EUR')),
    received_at         timestamptz NOT NULL,
    provider            text NOT NULL CHECK (length(provider) BETWEEN 1 AND 50),
    provider_reference  text NOT NULL CHECK (length(provider_reference) BETWEEN 1 AND 200),
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_reference)
);
CREATE INDEX payments_account_idx ON billing.payments (account_id, received_at);

-- Money applied to a charge (invoice or debit note): from a payment, or from a credit
-- document (credit note, cancellation) — first to the document it references, the rest
-- to the next charges oldest due first. What a payment or a credit document has not
-- allocated is the account's credit. Rows are never updated nor deleted.
CREATE TABLE billing.allocations (
    id            bigserial PRIMARY KEY,
    payment_id    bigint REFERENCES billing.payments (id),
    credit_id     bigint REFERENCES billing.invoices (id),
    invoice_id    bigint NOT NULL REFERENCES billing.invoices (id),
    amount        numeric(16, 2) NOT NULL CHECK (amount > 0),
    allocated_at  timestamptz NOT NULL,
    CHECK ((payment_id IS NULL) <> (credit_id IS NULL))
);
CREATE INDEX allocations_invoice_idx ON billing.allocations (invoice_id);
CREATE INDEX allocations_payment_idx ON billing.allocations (payment_id);
CREATE INDEX allocations_credit_idx ON billing.allocations (credit_id);

-- Why and by whom an invoice was cancelled (the cancellation is a document of its own).
CREATE TABLE billing.cancellations (
    invoice_id       bigint PRIMARY KEY REFERENCES billing.invoices (id),
    cancellation_id  bigint NOT NULL UNIQUE REFERENCES billing.invoices (id),
    reason           text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    cancelled_by     text NOT NULL CHECK (length(cancelled_by) BETWEEN 1 AND 200),
    cancelled_at     timestamptz NOT NULL
);

-- An overdue reminder sent (``invoice.overdue`` emitted): once per document and level
-- (days overdue).
CREATE TABLE billing.reminders (
    invoice_id    bigint NOT NULL REFERENCES billing.invoices (id),
    level         int NOT NULL CHECK (level >= 1),
    outstanding   numeric(16, 2) NOT NULL CHECK (outstanding > 0),
    sent_at       timestamptz NOT NULL,
    PRIMARY KEY (invoice_id, level)
);
