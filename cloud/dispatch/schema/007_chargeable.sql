-- Issue 19, point 4: parts and labour are PoTR's own cost under a PPA; only damage the
-- customer caused or equipment the customer owns is billed, from the work order. The
-- MOSIE on the job or an operator marks the work order chargeable (a reason and a note)
-- before or at completion; on completion dispatch emits
-- ``workorder.chargeable_completed`` once and stamps ``charge_billed_at``, after which
-- the mark can no longer change (billing has it).
ALTER TABLE dispatch.work_orders
    ADD COLUMN charge_reason text
        CHECK (charge_reason IN ('customer_damage', 'customer_equipment')),
    ADD COLUMN charge_note text NOT NULL DEFAULT '' CHECK (length(charge_note) <= 500),
    ADD COLUMN charge_billed_at timestamptz,
    ADD CONSTRAINT work_orders_billed_charge_check
        CHECK (charge_billed_at IS NULL OR charge_reason IS NOT NULL);
