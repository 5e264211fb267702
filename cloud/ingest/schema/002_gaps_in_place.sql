-- Gaps change in place (contracts.streams.advance): a fill at an edge shrinks the row, a
-- fill in the middle shrinks it to its lower part and splits the rest off into new rows
-- that inherit opened_at; a row is closed only when its gap is empty.
COMMENT ON TABLE ingest.gaps IS
    'Holes in a stream. Rows shrink in place as backfill arrives; pieces split off a row'
    ' keep its opened_at; closed_at is set when the hole is empty.';
