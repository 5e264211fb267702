"""The grid-code panel of a MOSIE's job page (issue 18.4): the site's resolved profile,
the region's profiles a technician may push, the pushes made under the job, and the push
itself through the config service's :class:`~cloud.config.TechnicianPushes` (the same
rules as a push over MQTT; the session vouches for the employee)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cloud.config import ConfigService, TechnicianPushes
from cloud.config.errors import NotFoundError
from cloud.config.tech_push import LoggedRequest
from cloud.config.tech_rules import OPEN_STATES
from cloud.dispatch.models import WorkOrder
from cloud.portal.web.session import Viewer
from contracts.messages import ConfigResp
from device_profiles import GridCodeProfile, builtin_grid_codes

__all__ = ["GridChoice", "GridPanel", "GridPushDesk"]


@dataclass(frozen=True, slots=True)
class GridChoice:
    id: str
    title: str
    unverified: bool


@dataclass(frozen=True, slots=True)
class GridPanel:
    #: The profile the site's rules resolve to (None: unassigned or site unknown here).
    resolved: str | None
    #: Why (the rule's reason), shown beside it.
    reason: str
    choices: list[GridChoice]
    pushes: list[LoggedRequest]


class GridPushDesk:
    """What the job page shows and does about the site's grid code (thread-safe)."""

    def __init__(
        self,
        pushes: TechnicianPushes,
        config: ConfigService,
        grid_codes: Callable[[], Mapping[str, GridCodeProfile]] = builtin_grid_codes,
    ) -> None:
        self._pushes = pushes
        self._config = config
        self._grid_codes = grid_codes

    @staticmethod
    def offered(order: WorkOrder) -> bool:
        """Whether the job's technician may push now (accepted, en route or on site)."""
        return order.status.value in OPEN_STATES

    def panel(self, order: WorkOrder, employee_no: str) -> GridPanel:
        region = order.region.value
        try:
            site = self._config.sites.grid_code(region, order.site_id)
            resolved = site.profile.id if site.profile is not None else None
            reason = site.reason
        except NotFoundError:
            resolved, reason = None, ""
        choices = [
            GridChoice(g.id, g.title, g.unverified)
            for g in sorted(self._grid_codes().values(), key=lambda g: g.id)
            if str(g.region) == region and not g.registration_only
        ]
        return GridPanel(
            resolved, reason, choices, self._pushes.pushes_of_job(order.id, employee_no)
        )

    def push(self, who: Viewer, order: WorkOrder, profile: str, form_key: str) -> ConfigResp:
        employee_no = who.caller.employee_no
        assert employee_no  # a MOSIE's page: the session carries it (checked before)
        return self._pushes.push_from_portal(
            user_id=who.caller.subject,
            employee_no=employee_no,
            home_region=who.caller.region.value,
            region=who.region.value,
            site_id=order.site_id,
            profile=profile,
            form_key=form_key,
        )
