-- Issue 20: a work order support asked for (a customer's fault report): origin 'support'
-- and the ticket it was raised for. One work order per ticket: a redelivered request
-- raises nothing twice.
ALTER TABLE dispatch.work_orders DROP CONSTRAINT work_orders_origin_check;
ALTER TABLE dispatch.work_orders
    ADD CONSTRAINT work_orders_origin_check
        CHECK (origin IN ('hand', 'policy', 'incident', 'support')),
    ADD COLUMN ticket_id bigint,
    ADD CONSTRAINT work_orders_support_ticket
        CHECK ((origin = 'support') = (ticket_id IS NOT NULL));
CREATE UNIQUE INDEX work_orders_ticket_idx ON dispatch.work_orders (ticket_id)
    WHERE ticket_id IS NOT NULL;
