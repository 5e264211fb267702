-- Dispatch's work orders as alerts needs them (workorder.* events, issue 17): whether a
-- technician is on the site. While any is, the site is out of service for alarms
-- (alerts.sites_out_of_service); the newest event of each work order wins.
CREATE TABLE alerts.work_orders (
    work_order_id  bigint PRIMARY KEY,
    site_id        int NOT NULL,
    on_site        boolean NOT NULL,
    at             timestamptz NOT NULL
);
CREATE INDEX work_orders_on_site ON alerts.work_orders (site_id) WHERE on_site;
