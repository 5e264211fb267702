"""``potr notify send``: a notice, an offer or a plan change to a chosen set of a region's
customers (:meth:`cloud.notify.NotificationService.send_notice`); the delivery worker
sends the mail it queues."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Any

import typer

from potr.console import CallConsole
from potr.runtime import load_settings

console = CallConsole()
notify_app = typer.Typer(help="Notices and offers to customers", no_args_is_help=True)

_PARAM = re.compile(r"^([a-z][a-z0-9_]{0,31})(?::(en|es))?=(.*)$", re.DOTALL)


def register(app: typer.Typer) -> None:
    app.add_typer(notify_app, name="notify")


def parse_params(given: list[str]) -> dict[str, Any]:
    """``name=value`` pairs (``name:es=valor`` for the Spanish text of ``name``); an ISO
    date becomes a date (shown in each reader's language)."""
    texts: dict[str, dict[str, str]] = {}
    for item in given:
        m = _PARAM.match(item)
        if m is None:
            raise typer.BadParameter(f"{item[:40]!r}: expected name=value or name:es=value")
        texts.setdefault(m.group(1), {})[m.group(2) or "en"] = m.group(3)
    params: dict[str, Any] = {}
    for name, by_language in texts.items():
        if "en" not in by_language:
            raise typer.BadParameter(f"{name}: the English text (name=value) is required")
        if set(by_language) == {"en"}:
            params[name] = _scalar(by_language["en"])
        else:
            params[name] = {"en": by_language["en"], "es": by_language.get("es")}
    return params


def _scalar(value: str) -> Any:
    try:
        return date.fromisoformat(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else value
    except ValueError:
        return value


@notify_app.command("send")
def notify_send(
    kind: str = typer.Argument(..., help="notice, offer or plan_change"),
    region: str = typer.Option(..., help="au, us or es"),
    account: list[str] = typer.Option(
        [], "--account", help="an account id (acc_…); repeat; none: every active account"
    ),
    plan: str | None = typer.Option(None, help="only accounts on this plan code"),
    param: list[str] = typer.Option(
        [], "--param", help="template parameter name=value (name:es=valor); repeat"
    ),
    link: str | None = typer.Option(None, help="a portal path with more (/es/plans)"),
    campaign: str | None = typer.Option(
        None, help="the sending's id (uuid); give the printed one to resume a sending"
    ),
) -> None:
    """Tell the chosen customers (offers: only those who opted in); prints what it did."""
    from pydantic import ValidationError

    from cloud.bootstrap import open_pool
    from cloud.notify import NoticeIn, NotificationService, NotifyError, NotifySettings

    try:
        notice = NoticeIn.model_validate(
            {
                "kind": kind,
                "region": region,
                "account_ids": account or None,
                "plan_code": plan,
                "params": parse_params(param),
                "link": link,
                "campaign_id": uuid.UUID(campaign) if campaign else uuid.uuid4(),
            }
        )
    except (ValueError, ValidationError) as exc:
        raise typer.BadParameter(_reason(exc)) from None
    settings = load_settings(NotifySettings, console)
    pool = open_pool(settings, "cli")
    try:
        result = NotificationService(pool, settings).send_notice(notice)
    except NotifyError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    finally:
        pool.close()
    console.print(
        f"campaign {result.campaign_id}: {result.notified} of {result.chosen} accounts told,"
        f" {result.inbox_posted} inbox entries, {result.queued} mails queued",
        highlight=False,
    )


def _reason(exc: Exception) -> str:
    """A refusal without echoing the values given (field: reason)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(
            ".".join(str(p) for p in e["loc"]) + ": " + e["msg"]
            for e in exc.errors(include_url=False, include_input=False)
        )
    return str(exc)
