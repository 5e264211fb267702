"""The PoTR edge agent: SunSpec over Modbus → normalised readings → SQLite outbox → MQTT.

Entry point: :func:`edge_agent.app.run_agent` with :class:`edge_agent.settings.AgentSettings`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
