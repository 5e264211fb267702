"""Which outboxes a process running the services relays: the SAP integration's only
where it runs (its ``service_order.changed`` is how SAP's rejections reach dispatch;
the end-to-end proof is tests/browser/test_scenario20_support.py)."""

from __future__ import annotations

from cloud.bootstrap import EMITTING_SCHEMAS, relayed_outboxes


def test_the_sap_outbox_is_relayed_where_the_integration_runs() -> None:
    assert relayed_outboxes(sap=True) == (*EMITTING_SCHEMAS, "sap")
    assert relayed_outboxes(sap=False) == EMITTING_SCHEMAS
    assert "sap" not in EMITTING_SCHEMAS  # no relay for a schema a process may lack
