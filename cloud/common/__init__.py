"""Shared cloud plumbing: settings, the PostgreSQL adapter, migrations, the MQTT adapter."""
