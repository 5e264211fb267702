"""The role-based portal: REST API (and, later, the web UI)."""

from cloud.portal.app import API_PREFIX, create_app
from cloud.portal.settings import ApiSettings, is_loopback

__all__ = ["API_PREFIX", "ApiSettings", "create_app", "is_loopback"]
