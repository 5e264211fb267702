-- Work orders (issue 17): notify tells the assigned MOSIE, the site's customer and the
-- region's operators about dispatch's ``workorder.*`` events. A technician is named by
-- their employee number there, so people keep theirs (from user.*). A reopened job has
-- no technician any more and a reassigned one names only the new one: notify remembers
-- who each work order was last with, to tell them (the newest event wins).

ALTER TABLE notify.people ADD COLUMN employee_no text;
CREATE INDEX people_employee_idx ON notify.people (region, employee_no)
    WHERE employee_no IS NOT NULL AND NOT disabled;

CREATE TABLE notify.work_orders (
    region         text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    work_order_id  bigint NOT NULL,
    -- The last technician the work order was with (an employee number).
    assignee       text NOT NULL,
    -- The ``at`` of the event that named them.
    assignee_at    timestamptz NOT NULL,
    PRIMARY KEY (region, work_order_id)
);
