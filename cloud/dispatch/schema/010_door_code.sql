-- Issue 20, point 3: the customer checks that the technician at the door is PoTR's by a
-- code shown on both the customer's and the MOSIE's page (cloud/dispatch/door_code.py).
-- Each job keeps its own random secret (32 bytes from PostgreSQL's strong random source,
-- two v4 UUIDs): the code is derived from it, so nothing but this column is stored, and
-- it is never read into a WorkOrder, an API answer, an event or a log.
ALTER TABLE dispatch.work_orders
    ADD COLUMN door_secret bytea NOT NULL
        DEFAULT (uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()))
        CHECK (length(door_secret) = 32);
