-- The web UI's idempotency keys for forms whose service takes none (issue 18's rollout
-- actions): one row per (person, key) once the form's action is done, so a double
-- click, a browser's retry or a replayed form is applied once. `what` names the action
-- and its object, so a key cannot be replayed against another. Rows older than a week
-- are deleted by the next insert (a rendered form is not kept open that long).
CREATE TABLE portal.form_keys (
    subject  text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    key      text NOT NULL CHECK (key ~ '^[A-Za-z0-9_-]{8,90}$'),
    what     text NOT NULL CHECK (length(what) BETWEEN 1 AND 200),
    at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, key)
);
CREATE INDEX form_keys_at_idx ON portal.form_keys (at);
