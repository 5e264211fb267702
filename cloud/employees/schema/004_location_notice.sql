-- The location privacy notice (issue 17): a MOSIE's phone may send where they are only
-- once they acknowledged the notice's current version (cloud/employees/location_notice.py).
-- Append-only: every acknowledgement and every withdrawal is a row (who, which version,
-- when); an employee's newest row is their standing, and the rows before it are the record
-- of what they agreed to when.
CREATE TABLE employees.location_notice_acks (
    id           bigserial PRIMARY KEY,
    employee_no  text NOT NULL REFERENCES employees.employees (employee_no) ON DELETE CASCADE,
    version      int NOT NULL CHECK (version BETWEEN 1 AND 10000),
    action       text NOT NULL CHECK (action IN ('acknowledge', 'withdraw')),
    at           timestamptz NOT NULL
);
CREATE INDEX location_notice_acks_employee_idx
    ON employees.location_notice_acks (employee_no, id DESC);
