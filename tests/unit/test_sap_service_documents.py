"""Work orders as SAP service documents: references, priorities, labour time from the
on-site samples (expected hours worked out by hand), and what SAP cannot hold refused
before sending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cloud.sap.errors import SapRefusedError
from cloud.sap.service_documents import (
    ConfirmationDraft,
    PartLine,
    ServiceOrderDraft,
    ServiceOrderRecord,
    confirmation_reference,
    labour_hours,
    sap_priority,
    service_order_reference,
)

T = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_references_carry_region_and_work_order() -> None:
    assert service_order_reference("au", 123) == "POTR-AU-WO-123"
    assert confirmation_reference("es", 7, 1) == "POTR-ES-WO-7-C1"


def test_priorities_map_to_sap_s_standard_values() -> None:
    assert [sap_priority(p) for p in ("P1", "P2", "P3", "P4")] == ["1", "3", "5", "9"]
    with pytest.raises(SapRefusedError):
        sap_priority("P9")


def test_labour_is_the_sum_of_on_site_spans_whatever_the_order_and_duplicates() -> None:
    m = timedelta(minutes=1)
    samples = [
        (T, False),  # scheduled
        (T + 60 * m, True),  # arrived
        (T + 70 * m, True),  # parts used, still on site
        (T + 100 * m, False),  # on hold: 40 min so far
        (T + 200 * m, True),  # back
        (T + 235 * m, False),  # resolved: + 35 min = 75 min = 1.25 h
    ]
    shuffled = samples[::-1] + samples[2:4]
    assert labour_hours(shuffled) == Decimal("1.25")
    # 20 min = 0.3333… h → 0.33; 50 min = 0.8333… → 0.83; 1 min 30 s = 0.025 → 0.03
    assert labour_hours([(T, True), (T + 20 * m, False)]) == Decimal("0.33")
    assert labour_hours([(T, True), (T + 50 * m, False)]) == Decimal("0.83")
    assert labour_hours([(T, True), (T + timedelta(seconds=90), False)]) == Decimal("0.03")
    assert labour_hours([]) == Decimal("0.00")


def test_what_sap_cannot_hold_is_refused_before_sending() -> None:
    with pytest.raises(SapRefusedError, match="ReferenceServiceOrder"):
        ServiceOrderDraft("P" * 81, "SVO1", "x", "1", "5")
    with pytest.raises(SapRefusedError, match="too long"):
        ServiceOrderDraft("POTR-AU-WO-1", "SVO1", "x" * 41, "1", "5")
    with pytest.raises(SapRefusedError, match="PurchaseOrderByCustomer"):
        ConfirmationDraft("C" * 36, "1", "1", "SVC1", "x", "SRV", Decimal(1))
    with pytest.raises(SapRefusedError, match="negative"):
        ConfirmationDraft("POTR-AU-WO-1-C0", "1", "1", "SVC1", "x", "SRV", Decimal(1),
                          (PartLine("FUSE", 0),))  # fmt: skip


def test_an_order_sap_rejected_is_not_unrejected_and_changes_are_seen() -> None:
    draft = ServiceOrderDraft("POTR-AU-WO-1", "SVO1", "Fault", "1", "5")
    held = ServiceOrderRecord("0000000001", "POTR-AU-WO-1", "Fault", "5")
    assert not held.differs_from(draft)
    assert held.differs_from(ServiceOrderDraft("POTR-AU-WO-1", "SVO1", "Fault", "1", "1"))
    assert held.differs_from(
        ServiceOrderDraft("POTR-AU-WO-1", "SVO1", "Fault", "1", "5", rejected=True)
    )
    rejected_in_sap = ServiceOrderRecord("0000000001", "POTR-AU-WO-1", "Fault", "5", rejected=True)
    assert not rejected_in_sap.differs_from(draft)
    assert rejected_in_sap.status == "rejected"
