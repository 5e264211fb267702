"""Alert policies: which alarms become work orders, as data (``policy_files/policies.yaml``).

A policy names an alert rule (``cloud/alerts/rule_files``) and what makes it worth a truck
roll: ``count`` raises of that rule on one site within ``within_h`` hours (an isolator
tripped twice in a day), or the alarm still active ``active_h`` hours after it was
raised (production short for three days). It then asks for a work order of ``type`` and
``priority`` for the site. At most one work order per policy and site is open at a time:
the dispatch service refuses a second while the first is open, and a policy that fired
waits for its work order to finish (:meth:`PolicyBook.released`) before it fires again.

:class:`PolicyBook` is pure and restartable: it remembers raise times per (policy, site)
and the alarms it is waiting on, all in :class:`PolicyState` (JSON), which the dispatch
service stores in the transaction that handles the alert event. Time comes from the
events and from the ``now`` handed to :meth:`PolicyBook.due`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cloud.dispatch.checklists import WorkOrderType
from cloud.events.alerts import ALERT_CLEARED, ALERT_RAISED, AlarmChanged
from cloud.events.workorders import Priority

__all__ = [
    "POLICY_FILE",
    "Policy",
    "PolicyBook",
    "PolicyError",
    "PolicySet",
    "PolicyState",
    "WorkOrderRequest",
    "load_policies",
    "parse_policies",
]

POLICY_FILE = Path(__file__).parent / "policy_files" / "policies.yaml"
#: Raise times kept per (policy, site): enough for any count a policy may ask.
_MAX_COUNT = 10


class PolicyError(ValueError):
    """A policy file that must not load: ``file``, ``policy`` and ``reason``."""

    def __init__(self, file: str, policy: str, reason: str) -> None:
        self.file, self.policy, self.reason = file, policy, reason
        super().__init__(f"{file}: policy {policy}: {reason}")


class Policy(BaseModel):
    """One alert rule → work order policy; exactly one of ``count`` (with ``within_h``)
    or ``active_h`` decides when it fires."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9-]{1,63}$")
    rule: str = Field(pattern=r"^[a-z][a-z0-9-]{1,63}$")
    type: WorkOrderType
    priority: Priority
    title: str = Field(min_length=1, max_length=200)
    count: int | None = Field(default=None, ge=1, le=_MAX_COUNT)
    within_h: float | None = Field(default=None, gt=0, le=24 * 31)
    active_h: float | None = Field(default=None, ge=0, le=24 * 31)

    @model_validator(mode="after")
    def _one_trigger(self) -> Self:
        by_count = self.count is not None
        if by_count == (self.active_h is not None):
            raise ValueError("give either count (with within_h) or active_h")
        if by_count and self.within_h is None and self.count != 1:
            raise ValueError("count above 1 needs within_h")
        return self


@dataclass(frozen=True)
class PolicySet:
    policies: tuple[Policy, ...]

    def for_rule(self, rule_id: str) -> list[Policy]:
        return [p for p in self.policies if p.rule == rule_id]


def parse_policies(doc: Any, *, file: str = "policies.yaml") -> PolicySet:
    """Policies from parsed YAML (``{policies: [...]}``); :class:`PolicyError` names the
    file and the policy."""
    if not isinstance(doc, dict) or not isinstance(doc.get("policies"), list):
        raise PolicyError(file, "-", "expected a mapping with a list under 'policies'")
    out: list[Policy] = []
    seen: set[str] = set()
    for i, item in enumerate(doc["policies"]):
        name = str(item.get("id", f"#{i + 1}")) if isinstance(item, dict) else f"#{i + 1}"
        try:
            policy = Policy.model_validate(item)
        except ValidationError as exc:
            reason = "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or 'policy'}: {e['msg']}"
                for e in exc.errors()
            )
            raise PolicyError(file, name, reason) from None
        if policy.id in seen:
            raise PolicyError(file, policy.id, "duplicate id")
        seen.add(policy.id)
        out.append(policy)
    return PolicySet(tuple(out))


def load_policies(path: Path = POLICY_FILE) -> PolicySet:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PolicyError(path.name, "-", f"not YAML: {exc}") from None
    return parse_policies(doc, file=path.name)


# -- the book ----------------------------------------------------------------------------
class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Raises(_Frozen):
    policy: str
    site_id: int
    at: list[datetime]


class _Watch(_Frozen):
    """An active alarm an ``active_h`` policy waits on."""

    policy: str
    site_id: int
    alarm_id: int
    since: datetime
    region: str


class _Fired(_Frozen):
    policy: str
    site_id: int


class PolicyState(_Frozen):
    v: Literal[1] = 1
    raises: list[_Raises] = Field(default_factory=list)
    watching: list[_Watch] = Field(default_factory=list)
    fired: list[_Fired] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WorkOrderRequest:
    """What a policy asks of the dispatch service: a work order for ``site_id``."""

    policy: str
    region: str
    site_id: int
    type: WorkOrderType
    priority: Priority
    title: str
    alarm_id: int
    at: datetime


class PolicyBook:
    """Alarm changes in, work-order requests out (see the module docstring)."""

    def __init__(self, policies: PolicySet, state: PolicyState | None = None) -> None:
        self.policies = policies
        self._by_id = {p.id: p for p in policies.policies}
        self._raises: dict[tuple[str, int], list[datetime]] = {}
        self._watching: dict[tuple[str, int], tuple[int, datetime, str]] = {}
        self._fired: set[tuple[str, int]] = set()
        if state is not None:
            for r in state.raises:
                if r.policy in self._by_id:
                    self._raises[(r.policy, r.site_id)] = list(r.at)
            for w in state.watching:
                if w.policy in self._by_id:
                    self._watching[(w.policy, w.site_id)] = (w.alarm_id, w.since, w.region)
            self._fired = {(f.policy, f.site_id) for f in state.fired if f.policy in self._by_id}

    def on_alarm(self, name: str, alarm: AlarmChanged, region: str) -> list[WorkOrderRequest]:
        """An ``alert.*`` event: raises count and start watches; clears end watches."""
        out: list[WorkOrderRequest] = []
        for policy in self.policies.for_rule(alarm.rule_id):
            key = (policy.id, alarm.site_id)
            if name == ALERT_RAISED:
                if policy.active_h is not None:
                    self._watching.setdefault(key, (alarm.alarm_id, alarm.at, region))
                    out += self._due_watch(policy, key, alarm.at)
                else:
                    out += self._count(policy, key, alarm, region)
            elif name == ALERT_CLEARED and policy.active_h is not None:
                watched = self._watching.get(key)
                if watched is not None and watched[0] == alarm.alarm_id:
                    del self._watching[key]
        return out

    def due(self, now: datetime) -> list[WorkOrderRequest]:
        """Watches that have lasted their ``active_h`` by ``now``."""
        out: list[WorkOrderRequest] = []
        for key in sorted(self._watching):
            out += self._due_watch(self._by_id[key[0]], key, now)
        return out

    def released(self, policy_id: str, site_id: int) -> None:
        """The work order a policy asked for is finished (or was refused): it may fire
        again for the site."""
        self._fired.discard((policy_id, site_id))

    def _count(
        self, policy: Policy, key: tuple[str, int], alarm: AlarmChanged, region: str
    ) -> list[WorkOrderRequest]:
        assert policy.count is not None
        if key in self._fired:
            return []  # its work order is open: raises meanwhile are that job's business
        times = sorted([*self._raises.get(key, []), alarm.at])[-_MAX_COUNT:]
        if policy.within_h is not None:
            horizon = alarm.at - timedelta(hours=policy.within_h)
            times = [t for t in times if t >= horizon]
        self._raises[key] = times
        if len(times) < policy.count:
            return []
        self._fired.add(key)
        self._raises[key] = []
        return [self._request(policy, key[1], region, alarm.alarm_id, alarm.at)]

    def _due_watch(
        self, policy: Policy, key: tuple[str, int], now: datetime
    ) -> list[WorkOrderRequest]:
        assert policy.active_h is not None
        alarm_id, since, region = self._watching[key]
        if now - since < timedelta(hours=policy.active_h) or key in self._fired:
            return []
        del self._watching[key]
        self._fired.add(key)
        at = since + timedelta(hours=policy.active_h)
        return [self._request(policy, key[1], region, alarm_id, at)]

    @staticmethod
    def _request(
        policy: Policy, site_id: int, region: str, alarm_id: int, at: datetime
    ) -> WorkOrderRequest:
        return WorkOrderRequest(
            policy.id, region, site_id, policy.type, policy.priority, policy.title, alarm_id, at
        )

    def snapshot(self) -> PolicyState:
        return PolicyState(
            raises=[
                _Raises(policy=p, site_id=s, at=times)
                for (p, s), times in sorted(self._raises.items())
                if times
            ],
            watching=[
                _Watch(policy=p, site_id=s, alarm_id=a, since=since, region=r)
                for (p, s), (a, since, r) in sorted(self._watching.items())
            ],
            fired=[_Fired(policy=p, site_id=s) for p, s in sorted(self._fired)],
        )
