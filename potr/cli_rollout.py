"""``potr rollout``: staged config rollouts, straight to the config service.

Like ``potr config``, these talk to the database (and the broker) with the POTR_*
settings; the waves advance in the config service's loop (``potr config run``, or the
demo), which ``status --follow`` watches.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Group
from rich.live import Live
from rich.table import Table

from potr.cli_config import _actor, _refused, _service
from potr.console import CallConsole

console = CallConsole()
rollout_app = typer.Typer(help="Staged config rollouts: canary, waves, stop, rollback")

_FINAL = ("aborted", "completed", "rolled_back")


def register(app: typer.Typer) -> None:
    app.add_typer(rollout_app, name="rollout")


def _load(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path}: expected a mapping (profile, settings, target, …)")
    return data


@rollout_app.command("create")
def rollout_create(
    region: str = typer.Argument(..., help="au, us or es"),
    file: Path = typer.Option(
        ...,
        "--file",
        help="YAML/JSON: {profile: {id, region, version}, settings: {device profile:"
        " {setting: value}}, target: {gateways|sites|utility|device_profiles}, canary,"
        " factor|wave_sizes, failure_threshold, on_failure, wave_timeout_s}",
    ),
    reason: str = typer.Option(..., "--reason", help="why (kept in the rollout's log)"),
    override_unverified: str | None = typer.Option(
        None, "--override-unverified", help="roll out unverified values anyway: the reason"
    ),
) -> None:
    """Create a rollout and push its canary."""
    from pydantic import ValidationError

    from cloud.config import ConfigError
    from cloud.config.rollout_models import RolloutIn

    body = {**_load(file), "reason": reason}
    if override_unverified:
        body.update(override_unverified=True, override_reason=override_unverified)
    try:
        request = RolloutIn.model_validate(body)
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    with _service() as service:
        try:
            view = service.rollouts.create(region, request, _actor())
        except ConfigError as exc:
            raise _refused(exc) from None
    console.print(_render(view))


@rollout_app.command("status")
def rollout_status(
    rollout_id: int | None = typer.Argument(None, help="a rollout id; none: list them"),
    region: str | None = typer.Option(None, "--region"),
    follow: bool = typer.Option(False, "--follow", "-f", help="live progress until it ends"),
    interval_s: float = typer.Option(1.0, "--interval", min=0.1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A rollout's progress per wave and per gateway (--follow: live), or the list."""
    from cloud.config import ConfigError

    with _service() as service:
        rollouts = service.rollouts
        try:
            if rollout_id is None:
                table = Table("id", "region", "state", "wave", "gateways", "by", "reason")
                for s in rollouts.list(region=region):
                    table.add_row(
                        str(s.id), s.region, s.state, str(s.current_wave), str(s.gateways),
                        s.created_by, s.reason,
                    )  # fmt: skip
                console.print(table)
                return
            view = rollouts.get(rollout_id, region=region)
            if as_json:
                typer.echo(json.dumps(view.model_dump(mode="json"), indent=2))
                return
            if not follow:
                console.print(_render(view))
                return
            with Live(_render(view), console=console.now(), refresh_per_second=4) as live:
                while view.state not in _FINAL or _open(view):
                    time.sleep(interval_s)
                    view = rollouts.get(rollout_id, region=region)
                    live.update(_render(view))
        except ConfigError as exc:
            raise _refused(exc) from None


def _open(view: Any) -> bool:
    """Outcomes still to come (a stopped rollout's pending gateways, a rollback's)."""
    return any(
        g.status == "pending" or (g.rollback is not None and g.rollback.status == "pending")
        for g in view.gateway_steps
    )


def _render(view: Any) -> Group:
    head = (
        f"rollout {view.id} ({view.region}) [bold]{view.state}[/bold]"
        f"{': ' + view.detail if view.detail else ''}\n"
        f"profile {view.profile.get('id')} v{view.profile.get('version')} · by"
        f" {view.created_by} · {view.reason} · stop above"
        f" {view.failure_threshold:.0%} ({view.on_failure})"
    )
    if view.unverified:
        head += f"\n[yellow]unverified values: {', '.join(view.unverified)}[/yellow]"
        if view.override_unverified:
            head += f" [yellow](overridden: {view.override_reason})[/yellow]"
    waves = Table("wave", "size", "applied", "pending", "failed", "other", "rate")
    for w in view.waves:
        c = w.counts
        other = w.size - c.get("applied", 0) - c.get("pending", 0) - w.failed
        rate = f"{w.failed / w.counted:.0%}" if w.counted else "-"
        mark = " ◀" if w.wave == view.current_wave and view.state == "running" else ""
        waves.add_row(
            f"{w.wave}{mark}", str(w.size), str(c.get("applied", 0)), str(c.get("pending", 0)),
            str(w.failed), str(other), rate,
        )  # fmt: skip
    gateways = Table("gateway", "wave", "status", "base", "version", "rollback", "detail")
    for g in view.gateway_steps:
        if g.status == "waiting":
            continue
        rb = f"{g.rollback.status} v{g.rollback.version or '-'}" if g.rollback else ""
        detail = g.rollback.detail if g.rollback and g.rollback.detail else g.detail
        gateways.add_row(
            g.gateway_id, str(g.wave), g.status, str(g.base_version or "-"),
            str(g.version or "-"), rb, detail,
        )  # fmt: skip
    return Group(head, waves, gateways)


def _action(name: str, rollout_id: int, reason: str, region: str | None) -> None:
    from cloud.config import ConfigError

    with _service() as service:
        try:
            view = service.rollouts.act(rollout_id, name, reason, _actor(), region=region)
        except ConfigError as exc:
            raise _refused(exc) from None
    console.print(_render(view))


_ID = typer.Argument(..., help="rollout id")
_REASON = typer.Option(..., "--reason", help="why (kept in the rollout's log)")
_REGION = typer.Option(None, "--region", help="refuse a rollout of another region")


@rollout_app.command("pause")
def rollout_pause(
    rollout_id: int = _ID, reason: str = _REASON, region: str | None = _REGION
) -> None:
    """No further gateway is pushed until resumed."""
    _action("pause", rollout_id, reason, region)


@rollout_app.command("resume")
def rollout_resume(
    rollout_id: int = _ID, reason: str = _REASON, region: str | None = _REGION
) -> None:
    """Accept the failures so far and go on wave by wave."""
    _action("resume", rollout_id, reason, region)


@rollout_app.command("abort")
def rollout_abort(
    rollout_id: int = _ID, reason: str = _REASON, region: str | None = _REGION
) -> None:
    """Nothing more is pushed (a rollback remains possible)."""
    _action("abort", rollout_id, reason, region)


@rollout_app.command("rollback")
def rollout_rollback(
    rollout_id: int = _ID, reason: str = _REASON, region: str | None = _REGION
) -> None:
    """Restore the previous settings where the rollout reached and still holds (gateways
    changed since are skipped and named)."""
    _action("rollback", rollout_id, reason, region)
