"""Device configuration: signed commands and versioned configs to the gateways, followed
to their acks and reported state, with rollback and an audit log.

Published interface: :class:`ConfigService` (sending, reading), :class:`ConfigTracker`
(the gateways' answers), :class:`TechnicianPushes` and :class:`TechRequestListener`
(field technicians' requests over MQTT), their models and errors, :func:`create_router`
for the portal,
:func:`subscriptions` for a composition root, the key helpers, its settings and its
loops (:func:`run_config_loops`; :mod:`cloud.bootstrap` builds and runs the service).
Other services import nothing else from here.
"""

from cloud.config.api import create_router
from cloud.config.errors import ConfigError, ConflictError, NotFoundError, RefusedError
from cloud.config.handlers import subscriptions
from cloud.config.keys import (
    DEMO_KEY_MARKER,
    SigningKeyError,
    is_demo_key,
    load_signing_key,
    public_key_path,
    write_key_file,
)
from cloud.config.models import (
    AuditEntry,
    Command,
    CommandIn,
    ConfigIn,
    ConfigView,
    DesiredConfig,
    RollbackIn,
)
from cloud.config.publishing import Publisher
from cloud.config.runner import run_config_loops
from cloud.config.service import ConfigService, ServiceOptions
from cloud.config.settings import ConfigSettings
from cloud.config.tech_listener import TechRequestListener
from cloud.config.tech_push import ApprovalCheck, Reply, TechnicianPushes
from cloud.config.tech_rules import MAX_AGE as TECH_REQUEST_MAX_AGE
from cloud.config.tech_rules import OPEN_STATES as TECH_PUSH_STATES
from cloud.config.tracker import SCHEMA, ConfigTracker

__all__ = [
    "DEMO_KEY_MARKER",
    "SCHEMA",
    "TECH_PUSH_STATES",
    "TECH_REQUEST_MAX_AGE",
    "ApprovalCheck",
    "AuditEntry",
    "Command",
    "CommandIn",
    "ConfigError",
    "ConfigIn",
    "ConfigService",
    "ConfigSettings",
    "ConfigTracker",
    "ConfigView",
    "ConflictError",
    "DesiredConfig",
    "NotFoundError",
    "Publisher",
    "RefusedError",
    "Reply",
    "RollbackIn",
    "ServiceOptions",
    "SigningKeyError",
    "TechRequestListener",
    "TechnicianPushes",
    "create_router",
    "is_demo_key",
    "load_signing_key",
    "public_key_path",
    "run_config_loops",
    "subscriptions",
    "write_key_file",
]
