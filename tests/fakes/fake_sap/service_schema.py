"""The service-order and service-confirmation services mock-sap lacks (business.md §1.1,
§6): ``API_SERVICE_ORDER_SRV`` (``A_ServiceOrder``, ``A_ServiceOrderItem``) and
``API_SERVICE_CONFIRMATION_SRV`` (``A_ServiceConfirmation``,
``A_ServiceConfirmationItem``), OData V2, with the field names and lengths the adapter
uses. Runs in the fake's own process, before the server is made.

- A service order is **not deletable** (SAP: reject it instead): a ``DELETE``, alone or
  inside a ``$batch``, is refused with ``405``.
- ``LastChangeDate`` is stamped by mock-sap on every create and update (monotonic per
  row, milliseconds): what the adapter's delta poll filters on.
- A service order of a transaction type the "system" does not know is refused as SAP
  refuses it (a business error, HTTP 400).
- :func:`set_status` is how a test acts as an SAP user (reject, complete): an update
  through mock-sap's store, so the change stamp moves as it would.

⚠ Fields the business reference does not list (the change stamp's name, the header's
rejection reason, the confirmation's fields) are marked in ``docs/sap.md``: verify them
against the tenant's ``$metadata`` before relying on them.
"""

from __future__ import annotations

from typing import Any

from mocksap import schema, store
from mocksap.odata import SapError

__all__ = ["CONFIRMATIONS", "SERVICE_ORDERS", "add_service_services", "set_status"]

SERVICE_ORDERS = "API_SERVICE_ORDER_SRV"
CONFIRMATIONS = "API_SERVICE_CONFIRMATION_SRV"

S, DT, DEC, BOOL = schema.S, schema.DT, schema.DEC, schema.BOOL


def _stamps() -> list[Any]:
    return [
        DT("CreationDate", creatable=False, updatable=False),
        DT("LastChangeDate", creatable=False, updatable=False),
    ]


def _service_order_types() -> None:
    order_key = [("ServiceOrder", "ServiceOrder")]
    schema._register(
        schema.EntityType(
            "A_ServiceOrder",
            [
                S("ServiceOrder", key=True, nullable=False, max_length=10, creatable=False),
                S("ServiceOrderType", max_length=4),
                S("ServiceOrderDescription", max_length=40),
                S("SoldToParty", max_length=10),
                S("ServiceDocumentPriority", max_length=1),
                DT("RequestedServiceStartDateTime"),
                DT("RequestedServiceEndDateTime"),
                S("PurchaseOrderByCustomer", max_length=35),
                S("ReferenceServiceOrder", max_length=80),
                S("FSMServiceCall", max_length=70),
                BOOL("ServiceOrderIsReleased"),
                BOOL("ServiceOrderIsCompleted"),
                BOOL("ServiceOrderIsRejected"),
                S("ServiceOrderRejectionReason", max_length=2),
                S("SrvcOrdExecutionStatus", max_length=2),
                *_stamps(),
            ],
            navs=[schema.Nav("to_Item", "A_ServiceOrderItem", "*", order_key)],
        )
    )
    schema._register(
        schema.EntityType(
            "A_ServiceOrderItem",
            [
                S("ServiceOrder", key=True, nullable=False, max_length=10),
                S("ServiceOrderItem", key=True, nullable=False, max_length=6),
                S("Product", max_length=40),
                S("ServiceOrderItemDescription", max_length=40),
                DEC("Quantity", precision=13, scale=3),
                S("QuantityUnit", max_length=3),
            ],
        )
    )


def _confirmation_types() -> None:
    key = [("ServiceConfirmation", "ServiceConfirmation")]
    schema._register(
        schema.EntityType(
            "A_ServiceConfirmation",
            [
                S("ServiceConfirmation", key=True, nullable=False, max_length=10, creatable=False),
                S("ServiceConfirmationType", max_length=4),
                S("ServiceConfirmationDescription", max_length=40),
                S("SoldToParty", max_length=10),
                S("ServiceOrder", max_length=10),
                S("PurchaseOrderByCustomer", max_length=35),
                BOOL("ServiceConfirmationIsFinal"),
                *_stamps(),
            ],
            navs=[schema.Nav("to_Item", "A_ServiceConfirmationItem", "*", key)],
        )
    )
    schema._register(
        schema.EntityType(
            "A_ServiceConfirmationItem",
            [
                S("ServiceConfirmation", key=True, nullable=False, max_length=10),
                S("ServiceConfirmationItem", key=True, nullable=False, max_length=6),
                S("ServiceConfItemCategory", max_length=4),
                S("Product", max_length=40),
                DEC("ActualServiceDuration", precision=13, scale=3),
                S("ActualServiceDurationUnit", max_length=3),
                DEC("Quantity", precision=13, scale=3),
                S("QuantityUnit", max_length=3),
            ],
        )
    )


def _not_deletable() -> None:
    """A service order is rejected, never deleted: refuse the delete however it comes
    (mock-sap's single requests and ``$batch`` parts both reach ``store.delete``)."""
    delete = store.delete

    def refusing(conn: Any, et: Any, keys: dict[str, Any]) -> None:
        if et.name in ("A_ServiceOrder", "A_ServiceOrderItem"):
            raise SapError(
                "Service orders cannot be deleted; reject the service order instead",
                405,
                code="/IWBEP/CX_MGW_NOT_IMPL_EXC",
            )
        delete(conn, et, keys)

    store.delete = refusing


#: The service transaction types customised in the fake's "system".
ORDER_TYPES = frozenset({"SVO1", "SVO2"})


def _known_order_type(row: dict[str, Any]) -> None:
    order_type = str(row.get("ServiceOrderType") or "")
    if order_type not in ORDER_TYPES:
        raise SapError(
            f"Transaction type {order_type or '(none)'} is not defined",
            400,
            code="CRM_ORDERADM_H/011",
            target="ServiceOrderType",
        )


def add_service_services() -> None:
    _service_order_types()
    _confirmation_types()
    store.VALIDATORS["A_ServiceOrder"] = _known_order_type
    store.AUTO_KEY["A_ServiceOrder"] = ("ServiceOrder", "SERVICEORDER", 10)
    store.AUTO_KEY["A_ServiceConfirmation"] = ("ServiceConfirmation", "SERVICECONF", 10)
    schema.SERVICES[SERVICE_ORDERS] = schema.Service(
        SERVICE_ORDERS,
        SERVICE_ORDERS,
        "Service Order (A2X)",
        {"A_ServiceOrder": "A_ServiceOrder", "A_ServiceOrderItem": "A_ServiceOrderItem"},
    )
    schema.SERVICES[CONFIRMATIONS] = schema.Service(
        CONFIRMATIONS,
        CONFIRMATIONS,
        "Service Confirmation (A2X)",
        {
            "A_ServiceConfirmation": "A_ServiceConfirmation",
            "A_ServiceConfirmationItem": "A_ServiceConfirmationItem",
        },
    )
    _not_deletable()


def set_status(conn: Any, service_order: str, payload: dict[str, Any]) -> None:
    """What an SAP user does in the service order app: ``{"rejected": true, "reason":
    "Z1"}`` or ``{"completed": true}``; through mock-sap's update (the stamp moves)."""
    values: dict[str, Any] = {}
    if "rejected" in payload:
        values["ServiceOrderIsRejected"] = bool(payload["rejected"])
    if "completed" in payload:
        values["ServiceOrderIsCompleted"] = bool(payload["completed"])
    if payload.get("reason"):
        values["ServiceOrderRejectionReason"] = str(payload["reason"])[:2]
    store.update(
        conn,
        schema.ENTITY_TYPES["A_ServiceOrder"],
        {"ServiceOrder": service_order},
        values,
        user="SAPUSER",
    )
