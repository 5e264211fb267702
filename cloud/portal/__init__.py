"""The role-based portal: REST API (and, later, the web UI)."""

from cloud.portal.app import API_PREFIX, REGIONAL_PREFIX, create_app
from cloud.portal.audit import ViewAudit, ViewRecord
from cloud.portal.auth import AccessFactory, Verify, access_dependencies
from cloud.portal.authz import ROUTES, Caller, CallerData, may_call, scope_for
from cloud.portal.errors import add_error_handlers
from cloud.portal.form_keys import FormKeyReused, FormKeys
from cloud.portal.guard import InputGuard
from cloud.portal.settings import ApiSettings, PortalSettings, is_loopback

__all__ = [
    "API_PREFIX",
    "REGIONAL_PREFIX",
    "ROUTES",
    "AccessFactory",
    "ApiSettings",
    "Caller",
    "CallerData",
    "FormKeyReused",
    "FormKeys",
    "InputGuard",
    "PortalSettings",
    "Verify",
    "ViewAudit",
    "ViewRecord",
    "access_dependencies",
    "add_error_handlers",
    "create_app",
    "is_loopback",
    "may_call",
    "scope_for",
]
