-- Device presence keeps the status announced (online / asleep / unreachable / faulty),
-- not only online or not: a device asleep at night is neither offline nor an alarm, and
-- a faulty one is told as such (issue 11). Gateways: online / offline. ``online`` stays
-- as before (false only for an offline gateway or an unreachable device).
ALTER TABLE ingest.presence ADD COLUMN status text;
UPDATE ingest.presence SET status = CASE
    WHEN online THEN 'online'
    WHEN kind = 'gateway' THEN 'offline'
    ELSE 'unreachable'
END;
ALTER TABLE ingest.presence ALTER COLUMN status SET NOT NULL;
