-- ARCHITECTURE decision 150: billing prorates a period over the account's plan history
-- (the plan it started on, then each change from its effective_from). A change records
-- the plan it replaced when it is applied (the account's plan just before), so the
-- history's first plan is known; changes applied before this column read NULL (billing
-- then takes the first change's own plan for the days before it).
ALTER TABLE customers.plan_changes ADD COLUMN replaced_plan_code text
    CHECK (replaced_plan_code ~ '^[a-z0-9][a-z0-9_-]{0,31}$');
