-- Issue 20, point 3: the badge photo a customer sees of the MOSIE at the door. One per
-- employee, small (an ID photo, at most 256 kB: cloud/employees/photos.py), kept beside
-- the record so it goes with it (an erasure deletes the record and its photo at once).
CREATE TABLE employees.badge_photos (
    employee_no   text PRIMARY KEY
                  REFERENCES employees.employees (employee_no) ON DELETE CASCADE,
    content_type  text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    content       bytea NOT NULL CHECK (length(content) BETWEEN 1 AND 262144),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    by_actor      text NOT NULL CHECK (length(by_actor) BETWEEN 1 AND 100),
    at            timestamptz NOT NULL
);
