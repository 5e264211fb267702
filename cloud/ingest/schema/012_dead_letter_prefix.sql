-- A dead letter keeps a bounded prefix of its payload (issue 12: junk must not fill the
-- table), with the original's size and SHA-256, so it can still be matched against the
-- gateway's copy. The dedupe digest (migration 003) stays sha256(topic, 0x00, payload)
-- over the whole original; ingest computes it now that the full payload no longer
-- reaches the database.
ALTER TABLE ingest.dead_letters
    ADD COLUMN payload_size int,
    ADD COLUMN payload_sha256 bytea;

UPDATE ingest.dead_letters SET payload_size = length(payload), payload_sha256 = sha256(payload);

-- Rows stored whole before this: cut to the default prefix (4 KiB), as new ones are.
UPDATE ingest.dead_letters SET payload = substring(payload FROM 1 FOR 4096)
WHERE length(payload) > 4096;

ALTER TABLE ingest.dead_letters
    ALTER COLUMN payload_size SET NOT NULL,
    ALTER COLUMN payload_sha256 SET NOT NULL;
