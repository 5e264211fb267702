"""The role-based portal: REST API (and, later, the web UI)."""

from cloud.portal.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
