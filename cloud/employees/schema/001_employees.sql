-- Staff records (employee management): linked to an identity user by its opaque id, never
-- by a foreign key (identity is another service, another schema). The checks repeat the
-- API's bounds, so a row written by any path is as valid as one the API accepted.
CREATE TABLE employees.employees (
    employee_no     text PRIMARY KEY CHECK (employee_no ~ '^E[0-9]{1,9}$'),
    user_id         text UNIQUE CHECK (user_id ~ '^usr_[0-9a-f]{32}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    region          text NOT NULL CHECK (region IN ('au', 'us', 'es')),
    jurisdiction    text NOT NULL CHECK (jurisdiction ~ '^[A-Z]{2}(-[A-Z0-9]{1,3})?$'),
    -- NaN is above every number in PostgreSQL: BETWEEN refuses it.
    base_latitude   float8 NOT NULL CHECK (base_latitude BETWEEN -90 AND 90),
    base_longitude  float8 NOT NULL CHECK (base_longitude BETWEEN -180 AND 180),
    base_address    text CHECK (length(base_address) BETWEEN 1 AND 500),
    time_zone       text NOT NULL CHECK (length(time_zone) BETWEEN 1 AND 64),
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX employees_jurisdiction_idx ON employees.employees (jurisdiction) WHERE active;

CREATE TABLE employees.skills (
    employee_no   text NOT NULL REFERENCES employees.employees (employee_no) ON DELETE CASCADE,
    code          text NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]{1,39}$'),
    jurisdiction  text CHECK (jurisdiction ~ '^[A-Z]{2}(-[A-Z0-9]{1,3})?$'),
    expires_on    date CHECK (expires_on BETWEEN '1950-01-01' AND '2100-12-31'),
    PRIMARY KEY (employee_no, code)
);
CREATE INDEX skills_code_idx ON employees.skills (code);

CREATE TABLE employees.licences (
    id            bigserial PRIMARY KEY,
    employee_no   text NOT NULL REFERENCES employees.employees (employee_no) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind ~ '^[a-z]{2}-[a-z0-9-]{1,40}$'),
    jurisdiction  text NOT NULL CHECK (jurisdiction ~ '^[A-Z]{2}(-[A-Z0-9]{1,3})?$'),
    number        text NOT NULL CHECK (number ~ '^[A-Za-z0-9][A-Za-z0-9 ./-]{0,63}$'),
    valid_from    date NOT NULL CHECK (valid_from BETWEEN '1950-01-01' AND '2100-12-31'),
    expires_on    date CHECK (expires_on BETWEEN valid_from AND '2100-12-31'),
    -- One issuer's licence number belongs to one person.
    UNIQUE (kind, jurisdiction, number)
);
CREATE INDEX licences_employee_idx ON employees.licences (employee_no);

CREATE TABLE employees.working_hours (
    employee_no  text NOT NULL REFERENCES employees.employees (employee_no) ON DELETE CASCADE,
    weekday      smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    starts       time NOT NULL,
    ends         time NOT NULL CHECK (ends > starts),
    PRIMARY KEY (employee_no, weekday, starts)
);

CREATE TABLE employees.absences (
    id           bigserial PRIMARY KEY,
    employee_no  text NOT NULL REFERENCES employees.employees (employee_no) ON DELETE CASCADE,
    starts_on    date NOT NULL CHECK (starts_on BETWEEN '1950-01-01' AND '2100-12-31'),
    ends_on      date NOT NULL CHECK (ends_on BETWEEN starts_on AND '2100-12-31'),
    kind         text NOT NULL CHECK (kind IN (
                     'annual_leave', 'sick_leave', 'parental_leave', 'training', 'public_duty',
                     'other')),
    note         text CHECK (length(note) BETWEEN 1 AND 500)
);
CREATE INDEX absences_employee_idx ON employees.absences (employee_no, ends_on);
