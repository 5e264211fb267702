-- One dead letter per distinct (topic, payload): a gateway resending the same refused
-- message (unknown gateway, wrong region…) bumps `repeats` and `last_received_at` instead
-- of adding a row with the full payload each time. `received_at` stays the first receipt
-- and `reason` the latest one.
ALTER TABLE ingest.dead_letters
    ADD COLUMN digest bytea,
    ADD COLUMN repeats bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_received_at timestamptz;

-- sha256(UTF-8 topic || 0x00 || payload): the same expression the inserts use.
UPDATE ingest.dead_letters
SET digest = sha256(convert_to(topic, 'UTF8') || '\x00'::bytea || payload),
    last_received_at = received_at;

-- Fold rows stored before this migration into the oldest of each kind.
UPDATE ingest.dead_letters AS keep
SET repeats = d.n - 1, last_received_at = d.last, reason = d.reason
FROM (
    SELECT DISTINCT ON (digest) digest, count(*) OVER w AS n,
           max(received_at) OVER w AS last,
           last_value(reason) OVER (w ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING
                                    AND UNBOUNDED FOLLOWING) AS reason,
           min(id) OVER w AS first_id
    FROM ingest.dead_letters
    WINDOW w AS (PARTITION BY digest)
) AS d
WHERE keep.id = d.first_id;
DELETE FROM ingest.dead_letters AS dup
USING ingest.dead_letters AS keep
WHERE dup.digest = keep.digest AND dup.id > keep.id;

ALTER TABLE ingest.dead_letters
    ALTER COLUMN digest SET NOT NULL,
    ALTER COLUMN last_received_at SET NOT NULL;
CREATE UNIQUE INDEX dead_letters_digest_key ON ingest.dead_letters (digest);
