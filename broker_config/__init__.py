"""broker_config package."""
