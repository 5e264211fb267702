"""Templates (Jinja2, autoescaped) in the person's language, and what every page knows:
the navigation of their role, the CSRF token, the versioned asset URLs, the language
switch. One environment per language, each with its gettext catalogue installed
(newstyle gettext: ``{{ _("...%(n)s", n=x) }}`` escapes its arguments)."""

from __future__ import annotations

import gettext
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from cloud.identity import Role
from cloud.portal.web.assets import Assets
from cloud.portal.web.cookies import CookieJar
from cloud.portal.web.csrf import CSRF_FIELD, csrf_token
from cloud.portal.web.formatting import Formats
from cloud.portal.web.i18n import LANGUAGES
from cloud.portal.web.session import Viewer

__all__ = ["NavItem", "Renderer", "navigation"]


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    href: str
    #: A count shown beside the label (the inbox's unread entries).
    badge: int | None = None


def navigation(role: Role, region: str, _: Any, unread: int | None = None) -> list[NavItem]:
    """The links of a role's menu (``_``: the page's gettext; ``unread``: the inbox's
    badge)."""
    base = f"/ui/{region}"
    sites = NavItem("sites", _("My sites") if role == Role.CUSTOMER else _("Sites"), f"{base}/")
    items = [sites]
    if role in (Role.ADMIN, Role.OPERATOR):
        items.insert(0, NavItem("fleet", _("Fleet"), f"{base}/fleet"))
    if role in (Role.ADMIN, Role.OPERATOR, Role.SUPPORT):
        items.append(NavItem("support", _("Customers"), f"{base}/support"))
    if role != Role.CUSTOMER:
        items.insert(1 if role in (Role.ADMIN, Role.OPERATOR) else 0,
                     NavItem("alarms", _("Alarms"), f"{base}/alarms"))  # fmt: skip
    if role in (Role.ADMIN, Role.OPERATOR):
        items.insert(2, NavItem("dispatch", _("Dispatch"), f"{base}/dispatch"))
        items.insert(3, NavItem("rollouts", _("Rollouts"), f"{base}/rollouts"))
        items.insert(4, NavItem("grid_codes", _("Grid codes"), f"{base}/grid-codes"))
        items.insert(5, NavItem("billing", _("Billing"), f"{base}/billing/cycles"))
        items.insert(6, NavItem("reports", _("Reports"), f"{base}/reports"))
    if role == Role.MOSIE:
        items.insert(0, NavItem("jobs", _("My jobs"), f"{base}/jobs"))
    if role == Role.CUSTOMER:
        items.append(NavItem("visits", _("Visits"), f"{base}/visits"))
        items.append(NavItem("bills", _("Bills"), f"{base}/bills"))
        items.append(NavItem("tickets", _("Help"), f"{base}/support/tickets"))
    elif role in (Role.ADMIN, Role.OPERATOR, Role.SUPPORT):
        items.append(NavItem("tickets", _("Tickets"), f"{base}/support/tickets"))
    if role == Role.ADMIN:
        items.append(NavItem("audit", _("Audit"), f"{base}/audit"))
    items.append(NavItem("inbox", _("Inbox"), f"{base}/inbox", unread))
    return items


def home_of(role: Role, region: str, employee_no: str | None = None) -> str:
    """Where a person lands after signing in: the fleet, the support desk, a MOSIE's own
    jobs (signed in with their employee number, which is their reach), else the sites."""
    if role in (Role.ADMIN, Role.OPERATOR):
        return f"/ui/{region}/fleet"
    if role == Role.SUPPORT:
        return f"/ui/{region}/support"
    if role == Role.MOSIE and employee_no:
        return f"/ui/{region}/jobs"
    return f"/ui/{region}/"


class Renderer:
    def __init__(
        self,
        translations: Mapping[str, gettext.NullTranslations],
        assets: Assets,
        jar: CookieJar,
        *,
        live_interval_s: float,
    ) -> None:
        self._assets = assets
        self._jar = jar
        self._live_interval_s = live_interval_s
        self._translations = dict(translations)
        self._envs = {lang: self._environment(t) for lang, t in translations.items()}

    @staticmethod
    def _environment(translations: gettext.NullTranslations) -> Environment:
        env = Environment(
            loader=PackageLoader("cloud.portal.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
        return env

    @property
    def live_interval_s(self) -> float:
        """How often live parts of pages ask again (seconds)."""
        return self._live_interval_s

    def environment(self, language: str) -> Environment:
        """The templates in ``language`` (for a part rendered outside :meth:`page`)."""
        return self._envs[language]

    def form_context(self, request: Request) -> dict[str, str]:
        """What a part with a form needs: the CSRF field's name and token."""
        return {"csrf_field": CSRF_FIELD, "csrf_token": csrf_token(request, self._jar)}

    def gettext(self, language: str) -> Callable[..., str]:
        """``_("... %(n)s", n=1)`` in ``language``, for text made in Python."""
        translations = self._translations[language]

        def _(message: str, **values: Any) -> str:
            text = translations.gettext(message)
            return text % values if values else text

        return _

    def page(
        self,
        request: Request,
        template: str,
        *,
        language: str,
        viewer: Viewer | None = None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        env = self._envs[language]
        _ = self.gettext(language)
        fmt = viewer.formats if viewer is not None else Formats(language)
        common = {
            "request_path": request.url.path,
            "asset": self._assets.url,
            "asset_vendor": self._assets.vendor,
            "csrf_field": CSRF_FIELD,
            "csrf_token": csrf_token(request, self._jar),
            "language": language,
            "languages": LANGUAGES,
            "viewer": viewer,
            "fmt": fmt,
            "nav": navigation(viewer.role, viewer.region.value, _, viewer.unread) if viewer else [],
            "live_interval_s": self._live_interval_s,
            "is_htmx": request.headers.get("hx-request") == "true",
        }
        html = env.get_template(template).render(common | context)
        return HTMLResponse(html, status_code=status_code)
