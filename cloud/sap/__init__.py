"""The SAP integration (issue 19, point 5): business partners for customers and every
issued document as an FI-AR journal entry, exactly once, from the ``sap`` schema's queue;
a daily reconciliation of what SAP holds against what was sent; work orders as service
orders and confirmations, SAP's status changes read back by delta polling (issue 20,
point 5). See ``docs/sap.md``.

Public surface: :class:`SapSettings`, :class:`SapExporter`, :func:`subscriptions`,
:func:`reconcile` and :func:`reconcile_daily`, the gateway protocol and its OData
adapter (:class:`ODataSapGateway`, imported from :mod:`cloud.sap.odata` where it is
used, so importing this package loads neither ``pyodata`` nor ``requests``).
"""

from cloud.sap.documents import SapGateway
from cloud.sap.errors import (
    SapBusinessError,
    SapError,
    SapRefusedError,
    SapTimeoutError,
    SapUnavailableError,
)
from cloud.sap.exporter import ExportReport, SapExporter
from cloud.sap.handlers import subscriptions
from cloud.sap.reconciliation import Reconciliation, reconcile, reconcile_daily
from cloud.sap.settings import SapSettings

__all__ = [
    "ExportReport",
    "Reconciliation",
    "SapBusinessError",
    "SapError",
    "SapExporter",
    "SapGateway",
    "SapRefusedError",
    "SapSettings",
    "SapTimeoutError",
    "SapUnavailableError",
    "reconcile",
    "reconcile_daily",
    "subscriptions",
]
