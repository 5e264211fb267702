"""``potr-agent --config agent.yaml``: the edge agent without the CLI framework.

A gateway runs only the agent, so its entry point loads only the agent: ``potr agent``
(the typer CLI with every other command) costs about 4 MiB more resident memory for
typer, rich and the other commands' modules. Both run :func:`run`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from potr.runtime import run_until_signal

__all__ = ["main", "run"]


def run(config: Path) -> int:
    """Run the agent of ``config`` until SIGINT/SIGTERM; 2 when the settings are refused."""
    from edge_agent.app import run_agent
    from edge_agent.logs import configure_logging
    from edge_agent.settings import AgentSettings, SettingsError

    try:
        settings = AgentSettings.from_yaml(config)
        settings.trusted_keys()  # an unreadable key file is refused here, not at start
    except SettingsError as exc:
        print(f"refused {config}: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, gateway_id=settings.gateway_id)
    run_until_signal(lambda stop: run_agent(settings, stop))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="potr-agent", description="Run the edge agent: discover, poll, buffer, publish."
    )
    parser.add_argument("--config", "-c", type=Path, required=True, help="agent settings YAML")
    args = parser.parse_args(argv)
    if not args.config.is_file():
        parser.error(f"--config {args.config}: no such file")
    return run(args.config)


if __name__ == "__main__":
    sys.exit(main())
