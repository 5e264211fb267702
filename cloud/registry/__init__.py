"""Registry (IoT device management): sites, gateways, devices, and the brokers' identities.

Published interface: :class:`RegistryService`, its models and errors,
:func:`create_router` for the portal and :func:`subscriptions` (its event handlers) for
the composition root. Other services import nothing else from here.
"""

from cloud.registry.api import create_router
from cloud.registry.handlers import subscriptions
from cloud.registry.identities import BrokerIdentities, BrokerIdentityRecord
from cloud.registry.models import (
    Device,
    Gateway,
    GatewayIn,
    Site,
    SiteIn,
    SiteMatch,
    SiteMatchField,
)
from cloud.registry.service import ConflictError, NotFoundError, RegistryError, RegistryService

__all__ = [
    "BrokerIdentities",
    "BrokerIdentityRecord",
    "ConflictError",
    "Device",
    "Gateway",
    "GatewayIn",
    "NotFoundError",
    "RegistryError",
    "RegistryService",
    "Site",
    "SiteIn",
    "SiteMatch",
    "SiteMatchField",
    "create_router",
    "subscriptions",
]
