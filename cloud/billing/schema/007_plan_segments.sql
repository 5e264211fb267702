-- ARCHITECTURE decision 150: a period whose account changed plan is prorated, each local
-- day on the plan in effect that day. The invoice keeps its plan segments, [[first day,
-- plan code], ...] from its first day (empty: plan_code throughout; plan_code is the
-- plan of the last day), so a true-up rates revised days at the plan they were billed
-- on; an energy line of such a document names its plan.
ALTER TABLE billing.invoices ADD COLUMN plans jsonb NOT NULL DEFAULT '[]'
    CHECK (jsonb_typeof(plans) = 'array');
ALTER TABLE billing.invoice_lines ADD COLUMN plan_code text
    CHECK (plan_code ~ '^[a-z0-9][a-z0-9_-]{0,31}$');
