"""Issue 16 on real parts: the demo's au site's DC isolator trips (a simulator fault on
real Modbus) → the agent raises ``isolator_tripped`` → MQTT (private TLS Mosquitto) →
ingest → ``gateway.isolator_tripped`` → the alerts service raises one alarm for the site
→ notify: an inbox entry for the site's customer and for the region's operator, and an
e-mail to the customer's address in a local SMTP sink. The time from the trip to the
notification is recorded (``notify.alarm_notifications``) and checked to be plausible
against the test's own clock.
"""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime

import pytest
from rich.console import Console

from potr.demo import ISOLATOR_UNIT, demo_stack
from tests.integration.api_world import private_database
from tests.integration.notify_harness import mail_sink
from tests.waiting import until

pytestmark = pytest.mark.integration


def _rows(stack: object, sql: str, *params: object) -> list[tuple[object, ...]]:
    with stack.pool.connection() as conn:  # type: ignore[attr-defined]
        return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]


async def test_an_isolator_trip_reaches_the_customer_and_the_operators(
    postgres_server_url: str,
) -> None:
    with private_database(postgres_server_url) as url, mail_sink() as (sink, port):
        async with demo_stack(
            broker="mosquitto",
            console=Console(file=io.StringIO()),
            database_url=url,
            smtp=("127.0.0.1", port),
        ) as stack:
            customer = next(p for p in stack.people if p.role == "customer" and p.region == "au")
            operator = next(p for p in stack.people if p.role == "operator")
            sim = stack.sims["au"]
            # The agent has seen the isolator closed (its telemetry is stored) and notify
            # knows the people (their events relayed) before the trip.
            await until(
                lambda: _rows(
                    stack,
                    "SELECT 1 FROM registry.devices WHERE gateway_id = 'demo-au-01'"
                    " AND kind = 'isolator'",
                ),
                60,
                "the isolator to be discovered",
            )
            await until(
                lambda: _rows(stack, "SELECT 1 FROM notify.people WHERE role = 'operator'"),
                30,
                "notify to know the operator",
            )
            tripped_at = datetime.now(UTC)
            started = time.monotonic()
            sim.activate_fault({"kind": "isolator_trip", "unit": ISOLATOR_UNIT})
            assert sim.device(ISOLATOR_UNIT).vendor["state"] == 2  # the simulator's TRIPPED

            await until(
                lambda: any(m["To"] == customer.email for m in sink.messages), 60, "the e-mail"
            )
            elapsed = time.monotonic() - started
            [alarm] = _rows(
                stack,
                "SELECT rule_id, site_id, state FROM alerts.alarms WHERE gateway_id = 'demo-au-01'",
            )
            assert alarm[0] == "isolator-tripped"
            assert alarm[1] == stack.sites["au"]
            # Inbox entries for the customer and the operator, by their user ids.
            inbox = _rows(
                stack,
                "SELECT p.role FROM notify.inbox i JOIN notify.people p USING (user_id)"
                " WHERE i.region = 'au' ORDER BY 1",
            )
            roles = [r[0] for r in inbox]
            assert "customer" in roles
            assert "operator" in roles
            mail = next(m for m in sink.messages if m["To"] == customer.email)
            assert "Demo Sydney" in mail["Subject"] + mail.get_content()
            assert any(m["To"] == operator.email for m in sink.messages)
            # Recorded: the alarm's raise to the notification, within what we measured.
            [(latency_ms, alarm_at)] = _rows(
                stack,
                "SELECT latency_ms, alarm_at FROM notify.alarm_notifications"
                " WHERE rule_id = 'isolator-tripped' AND audience = 'customer'",
            )
            assert 0 <= int(latency_ms) <= elapsed * 1000  # type: ignore[call-overload]
            assert alarm_at >= tripped_at.replace(microsecond=0)  # type: ignore[operator]

            # Stored telemetry reached the rules too (ARCHITECTURE 76): each demo
            # gateway's batches were evaluated in its own state row, the au inverter's
            # energy counter is marked for the shortfall rules, and the kinds of the
            # gateway's devices came from its birth — those the demo gives its units
            # (sim-der-inverter, sim-meter-203 twice: the grid meter and PoTR's system
            # meter, sim-isolator).
            await until(
                lambda: len(_rows(stack, "SELECT 1 FROM alerts.series_state")) == 3,
                30,
                "every demo gateway's telemetry to be evaluated",
            )
            [(marks,)] = _rows(
                stack,
                "SELECT production FROM alerts.series_state WHERE gateway_id = 'demo-au-01'",
            )
            assert {m["device"] for m in marks["marks"]} == {"INV-demo-au-01-1"}  # type: ignore[index]
            kinds = _rows(stack, "SELECT kind FROM alerts.devices WHERE gateway_id = 'demo-au-01'")
            assert sorted(k[0] for k in kinds) == ["inverter", "isolator", "meter", "meter"]  # type: ignore[type-var]
