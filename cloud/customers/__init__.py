"""Customers: accounts, their contacts, their sites' installation records (PV, battery,
network operator, tariff zone, warranty, billing meter), device warranties and
billing-meter replacements. Regional: every record lives in a region.

Published interface: :class:`CustomersService`, its models and errors,
:func:`create_router` for the portal. Other services import nothing else from here;
which account owns a site is the registry's (``registry.sites.account_id``), linked by
the composition root (:func:`cloud.bootstrap.link_site`).
"""

from cloud.customers.api import create_router
from cloud.customers.errors import ConflictError, CustomersError, NotFoundError, RefusedError
from cloud.customers.handlers import event_subscriptions, run_plan_changes
from cloud.customers.models import (
    Account,
    AccountIn,
    AccountPatch,
    AccountStatus,
    Contact,
    ContactIn,
    ContactRole,
    DeviceKind,
    DeviceWarranty,
    Installation,
    InstallationIn,
    MeterReplacement,
    MeterReplacementIn,
    PlanChange,
    WarrantyIn,
)
from cloud.customers.service import SCHEMA, CustomersService, new_account_id

__all__ = [
    "SCHEMA",
    "Account",
    "AccountIn",
    "AccountPatch",
    "AccountStatus",
    "ConflictError",
    "Contact",
    "ContactIn",
    "ContactRole",
    "CustomersError",
    "CustomersService",
    "DeviceKind",
    "DeviceWarranty",
    "Installation",
    "InstallationIn",
    "MeterReplacement",
    "MeterReplacementIn",
    "NotFoundError",
    "PlanChange",
    "RefusedError",
    "WarrantyIn",
    "create_router",
    "event_subscriptions",
    "new_account_id",
    "run_plan_changes",
]
