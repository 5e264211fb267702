-- A MOSIE's job page lists the pushes made under the job (issue 18.4, from the portal).
CREATE INDEX tech_requests_job_idx ON config.tech_requests (work_order_id, received_at)
    WHERE work_order_id IS NOT NULL;
