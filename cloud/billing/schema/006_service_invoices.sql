-- Issue 19, point 4: a job chargeable to the customer (damage the customer caused,
-- equipment the customer owns) is billed from its work order on a service invoice: an
-- ``invoice`` like any other (numbered from the same counter, emitted as invoice.issued,
-- allocated and reminded alike) that names its work order instead of billing a period.
-- Energy invoices stay one per site and period; service invoices are one per work order.
ALTER TABLE billing.invoices ADD COLUMN work_order_id bigint CHECK (work_order_id >= 1);
DROP INDEX billing.invoices_one_per_period_idx;
CREATE UNIQUE INDEX invoices_one_per_period_idx ON billing.invoices (region, site_id, first_day)
    WHERE kind = 'invoice' AND work_order_id IS NULL;
CREATE UNIQUE INDEX invoices_one_per_work_order_idx ON billing.invoices (region, work_order_id)
    WHERE kind = 'invoice' AND work_order_id IS NOT NULL;

-- A service line's quantity (parts; labour minutes, its unit price then per hour) and
-- what it is (a part's number and description).
ALTER TABLE billing.invoice_lines
    ADD COLUMN quantity numeric(12, 3) CHECK (quantity >= 0),
    ADD COLUMN item text CHECK (length(item) <= 200);
