-- What SAP says of a work order's service order (service_order.changed from the SAP
-- integration's delta poll): rejected or completed in SAP by an SAP user, with SAP's
-- reason. Shown with the work order; it changes nothing of the work order's lifecycle
-- (an operator decides: cancel, rebook, or take it up with the SAP side).
CREATE TABLE dispatch.sap_status (
    work_order_id  bigint PRIMARY KEY REFERENCES dispatch.work_orders (id),
    service_order  text NOT NULL CHECK (length(service_order) BETWEEN 1 AND 10),
    status         text NOT NULL CHECK (status IN ('open', 'rejected', 'completed')),
    reason         text CHECK (length(reason) <= 40),
    changed_at     timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
