-- Issue 19, inventory: each stocked part's reorder level and reorder quantity. A use that
-- takes the quantity on hand from above the level to at or below it asks for
-- ``reorder_quantity`` more (``part.reorder_needed``); a reorder quantity of 0 means the
-- part is not reordered (nothing is asked). The unit cost is ``unit_value`` (005), kept
-- on each use as it was then.
ALTER TABLE dispatch.parts_stock
    ADD COLUMN reorder_level int NOT NULL DEFAULT 0
        CHECK (reorder_level BETWEEN 0 AND 1000000),
    ADD COLUMN reorder_quantity int NOT NULL DEFAULT 0
        CHECK (reorder_quantity BETWEEN 0 AND 1000000);
