"""Privacy requests end to end on a real PostgreSQL (issue 20 point 6): an account with
personal data in every service that holds some (seeded through those services, or as
their event handlers record it, the events relayed for real), exported through a
``data_export`` ticket and erased through a ``data_erasure`` ticket. The export holds
everything hand-listed below; after the erasure only what the law keeps remains
(billing's documents, the bare ticket, work-order, site and alarm rows under the opaque
account id, the installation's energy), the customer can no longer sign in, the copies
other services keep follow the owners' events, and the erasure record holds counts
only."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from cloud.adapters.postgres import dict_row
from cloud.alerts import AlertService
from cloud.alerts import event_subscriptions as alert_subscriptions
from cloud.alerts.alarms import AlarmCondition
from cloud.bootstrap import create_privacy_desk
from cloud.customers import CustomersService
from cloud.customers.models import AccountIn, ContactIn
from cloud.dispatch import DispatchService, DispatchSettings, FilesystemPhotoStorage
from cloud.dispatch import event_subscriptions as dispatch_subscriptions
from cloud.events.bus import InProcessBus
from cloud.events.relay import OutboxRelay
from cloud.events.types import CustomerAccount
from cloud.events.users import UserChanged, UserContact
from cloud.identity import Role
from cloud.identity.service import InvalidCredentials
from cloud.ingest import event_subscriptions as ingest_subscriptions
from cloud.notify import NotificationService, NotifyHandlers, NotifySettings, recipients
from cloud.notify import event_subscriptions as notify_subscriptions
from cloud.registry import GatewayIn, RegistryService, SiteIn
from cloud.sap import subscriptions as sap_subscriptions
from cloud.scope import Scope
from cloud.support import Actor, Kind, SupportService, TicketIn
from cloud.support.errors import ConflictError, NotFoundError
from cloud.support.privacy import LegalTerm, PrivacyDesk, legal_due, load_terms
from cloud.telemetry import TelemetryStore
from contracts.topics import Region
from tests.integration.api_world import (
    PNG,
    form_fields,
    insert_invoice,
    installation_in,
    page_client,
    private_database,
    private_world,
    seed_offer,
)
from tests.integration.identity_harness import PASSWORD, identity_stack

AU = Region.AU
ZONE = "Australia/Sydney"
TICKETS = "/ui/au/support/tickets"
STAFF, MOSIE = "E00042", "E00007"
OPERATOR = f"usr_{'0' * 31}1"
NAME, EMAIL, PHONE = "Ana Pérez", "ana.perez@example.com", "+61400111222"
SITE_NAME = "Casa Pérez, 12 Wattle St"
LAT, LON = -33.86882, 151.20929
#: The location kept after the erasure: rounded to 0.01° by hand.
COARSE = (-33.87, 151.21)
RESCHEDULE_REASON = "after my night shift"
SIGNATURE = b"\x89PNG\r\n\x1a\n" + b"\x01" * 80
#: Text only this customer wrote: none of it may survive the erasure anywhere.
PERSONAL = [
    NAME, EMAIL, PHONE, "Rosa Pérez", "rosa@example.com", "12 Wattle St", "gate 4455",
    "Casa Pérez", str(LAT), str(LON), RESCHEDULE_REASON,
]  # fmt: skip
#: The meter's 15-minute energy buckets (mWh), by UTC start: two local days in Sydney
#: (UTC+11 in December: 01:00 UTC is 12:00 local, the same date).
TODAY = datetime.now(UTC).date()
DAY1, DAY2 = TODAY - timedelta(days=2), TODAY - timedelta(days=1)
BUCKETS = [
    (datetime(DAY1.year, DAY1.month, DAY1.day, 1, 0, tzinfo=UTC), 250_000),
    (datetime(DAY1.year, DAY1.month, DAY1.day, 1, 15, tzinfo=UTC), 300_000),
    (datetime(DAY2.year, DAY2.month, DAY2.day, 1, 0, tzinfo=UTC), 125_500),
]
#: By hand: DAY1 250 000 + 300 000 mWh; DAY2 125 500 mWh.
ENERGY_DAYS = [(DAY1.isoformat(), 550_000), (DAY2.isoformat(), 125_500)]


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    workdir = tmp_path_factory.mktemp("privacy")
    with private_database(postgres_server_url) as url, identity_stack(url, workdir) as ident:
        yield ident, workdir


def _relay(pool: Any, dispatch: DispatchService, alerts: AlertService) -> None:
    """The registry's, customers', dispatch's and alerts' outboxes through the real relay
    to the handlers of the services that copy them (ingest, alerts, dispatch, SAP,
    notify)."""
    settings = NotifySettings(env="test", database_url="postgresql://unused")
    notify = NotifyHandlers(pool, NotificationService(pool, settings))

    async def run() -> None:
        async with InProcessBus() as bus:
            subs = [
                *ingest_subscriptions(pool), *alert_subscriptions(alerts),
                *dispatch_subscriptions(dispatch), *sap_subscriptions(pool),
                *notify_subscriptions(notify),
            ]  # fmt: skip
            for sub in subs:
                await bus.subscribe(sub)
            for schema in ("registry", "customers", "dispatch", "alerts"):
                relay = OutboxRelay(pool, schema, bus)
                while await relay.relay_once():
                    pass
            assert bus.dead_letters == [], bus.dead_letters

    asyncio.run(run())


def _seed(ident: Any, workdir: Path) -> dict[str, Any]:
    pool = ident.pool
    customers = CustomersService(pool)
    account = customers.add_account(AU, AccountIn(name=NAME, email=EMAIL))
    acc = account.id
    customers.add_contact(AU, acc, ContactIn(name=NAME, email=EMAIL, phone=PHONE, primary=True))
    customers.add_contact(AU, acc, ContactIn(name="Rosa Pérez", email="rosa@example.com"))
    user = ident.add_user(email=EMAIL, display_name=NAME, account_id=acc)
    ident.service.login(EMAIL, PASSWORD, "203.0.113.10")  # a session and a sign-in line
    # Notify's copies, as its handlers record customers' and identity's events.
    with pool.connection() as conn:
        at = datetime.now(UTC)
        recipients.save_account(
            conn,
            CustomerAccount(
                account_id=acc, region=AU, name=NAME, email=EMAIL, plan_code=None,
                status="active",
            ),
            at,
        )  # fmt: skip
        recipients.save_person(
            conn, UserChanged(user_id=user.id, role="customer", home_region=AU, account_id=acc), at
        )
        # An operator of the region, whom notify tells of the account's alarms.
        recipients.save_person(
            conn, UserChanged(user_id=OPERATOR, role="operator", home_region=AU), at
        )
        recipients.save_contact(
            conn, UserContact(user_id=OPERATOR, home_region=AU, email="ops@potr.example"), at
        )
    registry = RegistryService(pool)
    site = registry.add_site(
        SiteIn(name=SITE_NAME, region=AU, time_zone=ZONE, latitude=LAT, longitude=LON)
    ).id
    registry.set_site_account(site, acc)
    registry.add_gateway(GatewayIn(id="gw-privacy", site_id=site))
    customers.put_installation(AU, site, installation_in(AU, "MTR-PRIV"))
    dispatch = DispatchService(pool, photos=FilesystemPhotoStorage(workdir / "photos"))
    alerts = AlertService(pool)
    _relay(pool, dispatch, alerts)  # the copies of the site, the account's SAP partner
    alarm = alerts.store.raise_condition(
        AlarmCondition(
            rule_id="isolator_open", site_id=site, gateway_id="gw-privacy", region=AU,
            severity="high", account_id=acc, title="Isolator open",
            detail={
                "site_name": SITE_NAME,
                "notify": {"to": ["operators", "customer"], "safety_notice": False},
            },
        )
    ).id  # fmt: skip
    # Notify tells the operator and the customer — before the visit below takes the site
    # out of service, after which its alarms tell no one.
    _relay(pool, dispatch, alerts)
    order = dispatch.create(
        AU, site, "inspection", "P3", "Check at 12 Wattle St", "Use gate 4455", STAFF
    ).id
    key = lambda: uuid4().hex  # noqa: E731
    dispatch.act(order, "assign", STAFF, "operator", idempotency_key=key(), technician=MOSIE)
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    seed_offer(pool, order, starts)
    dispatch.confirm_appointment(order, starts, user.id, "customer", key())
    dispatch.reschedule_appointment(
        order, user.id, "customer", key(), reason=RESCHEDULE_REASON
    )  # fmt: skip
    for action in ("accept", "start_travel", "arrive"):
        dispatch.act(order, action, MOSIE, "mosie", idempotency_key=key())
    photo = dispatch.add_photo(order, PNG, "image/png", MOSIE, key()).id
    dispatch.sign(order, NAME, SIGNATURE, MOSIE, key())
    _relay(pool, dispatch, alerts)  # SAP's service order of the work order
    # The meter's energy, as ingest keys the device and the store's maintenance sums it.
    TelemetryStore(pool).sync_catalog()
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO ingest.device_keys (gateway_id, local_id, device_id)"
            " VALUES ('gw-privacy', 'meter-1', nextval('ingest.device_key_seq'))"
        )
        conn.execute(
            "INSERT INTO telemetry.energy_15m (device_id, metric_id, bucket, energy_mwh,"
            " samples, covered) SELECT k.device_id, 10, b.at, b.mwh, 15, '15 minutes'"
            " FROM ingest.device_keys k, unnest(%s::timestamptz[], %s::bigint[]) b(at, mwh)"
            " WHERE k.gateway_id = 'gw-privacy'",
            ([b[0] for b in BUCKETS], [b[1] for b in BUCKETS]),
        )
    invoice = "AU-2026-0000001"
    insert_invoice(pool, AU, acc, site, invoice)
    support = SupportService(pool, site_facts=lambda r, s: None, account_known=lambda r, a: True)
    me = Actor(user.id, "customer")
    complaint = support.create(
        AU, acc, TicketIn(kind=Kind.COMPLAINT, subject="Wrong bill", description="12 Wattle St"),
        me,
    )  # fmt: skip
    support.reply(complaint.id, Scope.of_account(AU, acc), me, "Call Rosa Pérez instead")
    return {"acc": acc, "user": user, "order": order, "invoice": invoice, "support": support,
            "complaint": complaint.id, "me": me, "site": site, "photo": photo, "alarm": alarm,
            "dispatch": dispatch, "alerts": alerts}  # fmt: skip


def _request(seed: dict[str, Any], kind: Kind) -> int:
    given = TicketIn(kind=kind, subject=f"{kind.value} please", description=f"I am {NAME}")
    return int(seed["support"].create(AU, seed["acc"], given, seed["me"]).id)


def _copies(pool: Any) -> list[dict[str, Any]]:
    """What other services copied of the site and the account (not through a holder)."""
    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        return [
            *cur.execute("SELECT * FROM alerts.gateways").fetchall(),
            *cur.execute("SELECT * FROM dispatch.sites").fetchall(),
            *cur.execute("SELECT account_id, name FROM sap.partners").fetchall(),
            *cur.execute("SELECT reference, description FROM sap.service_orders").fetchall(),
            *cur.execute("SELECT * FROM notify.accounts").fetchall(),
            *cur.execute("SELECT user_id, title, body FROM notify.inbox").fetchall(),
            *cur.execute("SELECT destination, payload FROM notify.deliveries").fetchall(),
        ]


def test_export_then_erasure(world: Any) -> None:
    ident, workdir = world
    seed = _seed(ident, workdir)
    acc, site, staff = seed["acc"], seed["site"], Scope.of_region(AU)
    photos = workdir / "photos"
    desk: PrivacyDesk = create_privacy_desk(
        ident.pool, dispatch=DispatchSettings(dispatch_photo_dir=photos)
    )
    before = json.dumps(_copies(ident.pool), default=str, ensure_ascii=False)
    assert all(p in before for p in (NAME, SITE_NAME, str(LAT), "Check at 12 Wattle St"))
    with ident.pool.connection() as conn:  # what notify told the operator of the alarm
        told = conn.execute(
            "SELECT i.title, d.destination FROM notify.inbox i JOIN notify.deliveries d"
            " USING (notification_id, user_id) WHERE i.user_id = %s",
            (OPERATOR,),
        ).fetchall()
    assert told == [(f"Alarm at {SITE_NAME}: Isolator open", "ops@potr.example")]

    # -- export -----------------------------------------------------------------------
    ticket = _request(seed, Kind.DATA_EXPORT)
    ready = desk.export(ticket, staff, STAFF)
    with pytest.raises(ConflictError):  # once per ticket
        desk.export(ticket, staff, STAFF)
    with pytest.raises(NotFoundError):  # another account's scope does not reach it
        desk.download(ticket, Scope.of_account(AU, f"acc_{'0' * 32}"))
    archive = zipfile.ZipFile(io.BytesIO(desk.download(ticket, Scope.of_account(AU, acc))))
    assert ready.size > 0
    names = set(archive.namelist())
    photo_file = f"dispatch/photos/{seed['photo']}.png"
    signature_file = f"dispatch/signatures/{seed['order']}-1.png"
    services = (
        "customers", "identity", "notify", "registry", "telemetry", "alerts", "dispatch",
        "billing", "sap", "support",
    )  # fmt: skip
    assert names == {"manifest.json", photo_file, signature_file} | {f"{s}.json" for s in services}
    assert archive.read(photo_file) == PNG
    assert archive.read(signature_file) == SIGNATURE
    files = {n: json.loads(archive.read(n)) for n in names if n.endswith(".json")}
    got = files["customers.json"]
    assert [(a["name"], a["email"]) for a in got["account"]] == [(NAME, EMAIL)]
    assert sorted((c["name"], c["email"], c["phone"]) for c in got["contacts"]) == [
        (NAME, EMAIL, PHONE), ("Rosa Pérez", "rosa@example.com", None)
    ]  # fmt: skip
    assert [(i["site_id"], i["billing_meter"]) for i in got["installations"]] == [
        (site, "MTR-PRIV")
    ]
    users = files["identity.json"]["users"]
    assert [(u["id"], u["email"], u["display_name"]) for u in users] == [
        (seed["user"].id, EMAIL, NAME)
    ]
    assert "password_hash" not in users[0]
    assert len(files["identity.json"]["sign_in_log"]) >= 1  # the login above
    assert [(a["name"], a["email"]) for a in files["notify.json"]["account"]] == [(NAME, EMAIL)]
    assert [p["user_id"] for p in files["notify.json"]["people"]] == [seed["user"].id]
    told = [i["title"] for i in files["notify.json"]["inbox"]]
    assert f"Alarm at {SITE_NAME}: Isolator open" in told
    reg = files["registry.json"]
    assert [(s["id"], s["name"], s["latitude"], s["longitude"]) for s in reg["sites"]] == [
        (site, SITE_NAME, LAT, LON)
    ]
    assert [g["id"] for g in reg["gateways"]] == ["gw-privacy"]
    energy = files["telemetry.json"]["energy_days"]
    assert [
        (e["site_id"], e["device"], e["metric"], e["day"], e["energy_mwh"]) for e in energy
    ] == [(site, "meter-1", "pv_wh", day, mwh) for day, mwh in ENERGY_DAYS]
    alarms = files["alerts.json"]["alarms"]
    assert [(a["id"], a["rule_id"], a["detail"]["site_name"]) for a in alarms] == [
        (seed["alarm"], "isolator_open", SITE_NAME)
    ]
    work = files["dispatch.json"]
    assert [(o["id"], o["title"], o["description"]) for o in work["work_orders"]] == [
        (seed["order"], "Check at 12 Wattle St", "Use gate 4455")
    ]
    assert [(c["role"], c["reason"]) for c in work["appointment_changes"]] == [
        ("customer", RESCHEDULE_REASON)
    ]
    assert [p["id"] for p in work["photos"]] == [seed["photo"]]
    assert [(s["visit"], s["signer_name"]) for s in work["signatures"]] == [(1, NAME)]
    sap = files["sap.json"]
    assert [p["name"] for p in sap["business_partner"]] == [NAME]
    assert [o["description"] for o in sap["service_orders"]] == ["Check at 12 Wattle St"]
    assert [d["number"] for d in files["billing.json"]["documents"]] == [seed["invoice"]]
    # insert_invoice's one line: 100 kWh at 0.25.
    assert [(x["number"], x["kwh"], x["net"]) for x in files["billing.json"]["document_lines"]] == [
        (seed["invoice"], "100.000000", "25.00")
    ]
    tickets = files["support.json"]["tickets"]
    assert [(t["id"], t["kind"]) for t in tickets] == [
        (seed["complaint"], "complaint"), (ticket, "data_export")
    ]  # fmt: skip
    notes = [h["note"] for h in files["support.json"]["ticket_history"]]
    assert "Call Rosa Pérez instead" in notes
    manifest = files["manifest.json"]
    assert manifest["account_id"] == acc
    assert manifest["files"] == sorted([photo_file, signature_file])
    # AU: 30 days from the day the request was received.
    assert manifest["legal_due"] == (datetime.now(UTC).date() + timedelta(days=30)).isoformat()

    # -- erasure ----------------------------------------------------------------------
    erasure = _request(seed, Kind.DATA_ERASURE)
    record = desk.erase(erasure, staff, STAFF)
    with pytest.raises(ConflictError):
        desk.erase(erasure, staff, STAFF)
    # Counts by hand: 2 contacts and the account's name/email; 1 user, its 1 session;
    # notify's account copy and person; the site's name and location; the alarm's site
    # name and alerts' copy of the gateway; the work order's texts, the reasons of the
    # customer's 2 history lines (confirmed, rescheduled) and of the reschedule, 1 photo,
    # 1 signature, dispatch's copy of the site; SAP's
    # partner name and service order; support: 3 tickets' texts (complaint, export,
    # erasure), the export archive, the history notes written.
    assert record.counts["customers"] == {
        "erased": {"contacts": 2, "account_name_email": 1},
        "kept": {"account_id": 1, "plan_changes": 0, "installations": 1},
    }
    assert record.counts["identity"]["erased"]["users"] == 1
    assert record.counts["identity"]["erased"]["refresh_tokens"] == 1
    assert record.counts["identity"]["kept"] == {"disabled_users": 1}
    assert record.counts["notify"]["erased"]["account"] == 1
    assert record.counts["notify"]["erased"]["people"] == 1
    # The operator's notice of the alarm and its e-mail.
    assert record.counts["notify"]["erased"]["others_notices"] == 1
    assert record.counts["notify"]["erased"]["others_deliveries"] == 1
    assert record.counts["registry"] == {
        "erased": {"site_names_locations": 1}, "kept": {"sites": 1}
    }  # fmt: skip
    assert record.counts["telemetry"] == {"erased": {}, "kept": {"energy_days": 2}}
    assert record.counts["alerts"] == {
        "erased": {"alarm_site_names": 1, "gateway_copies": 1}, "kept": {"alarms": 1}
    }  # fmt: skip
    assert record.counts["dispatch"] == {
        "erased": {
            "work_order_texts": 1, "customer_reasons": 3, "photos": 1, "signatures": 1,
            "site_locations": 1,
        },
        "kept": {"work_orders": 1},
    }  # fmt: skip
    assert record.counts["sap"] == {
        "erased": {"business_partner_name": 1, "service_order_descriptions": 1},
        "kept": {"journal_entries": 0},
    }
    assert record.counts["billing"] == {
        "erased": {},
        "kept": {"documents": 1, "document_lines": 1, "payments": 0, "refunds": 0},
    }
    assert record.counts["support"]["erased"]["ticket_texts"] == 3
    assert record.counts["support"]["erased"]["export_archives"] == 1
    assert record.counts["support"]["kept"] == {"tickets": 3}
    stored = desk.erasure(erasure, staff)
    assert stored is not None
    assert stored.counts == record.counts
    assert not any(
        p in json.dumps(stored.model_dump(mode="json"), ensure_ascii=False) for p in PERSONAL
    )
    # The owners' events carry the erased values to every copy (ingest, config too).
    _relay(ident.pool, seed["dispatch"], seed["alerts"])

    # What remains, read as a new export would and in the copies: none of the personal
    # text, anywhere; the photo files gone from the storage.
    after = {h.service: h.export(AU, acc) for h in desk.holders}
    dumped = json.dumps([after, _copies(ident.pool)], default=str, ensure_ascii=False)
    assert [p for p in PERSONAL if p in dumped] == []
    assert [p.name for p in photos.rglob("*") if p.is_file()] == []
    assert after["customers"]["contacts"] == []
    assert [(s["name"], s["latitude"], s["longitude"]) for s in after["registry"]["sites"]] == [
        (f"site {site}", *COARSE)
    ]
    assert after["dispatch"]["photos"] == after["dispatch"]["signatures"] == []
    assert [
        (str(e["day"]), e["energy_mwh"]) for e in after["telemetry"]["energy_days"]
    ] == ENERGY_DAYS
    assert [a["id"] for a in after["alerts"]["alarms"]] == [seed["alarm"]]
    assert [d["number"] for d in after["billing"]["documents"]] == [seed["invoice"]]
    assert [str(d["gross"]) for d in after["billing"]["documents"]] == [
        files["billing.json"]["documents"][0]["gross"]
    ]  # the amounts kept as issued (compared as the export printed them)
    assert all(u["disabled_at"] is not None for u in after["identity"]["users"])
    with pytest.raises(InvalidCredentials):  # the portal access has ended
        ident.service.login(EMAIL, PASSWORD, "203.0.113.10")
    with pytest.raises(NotFoundError):  # the archive went with the rest
        desk.download(ticket, Scope.of_account(AU, acc))
    # A second erasure (a retried run) erases nothing more but the note the first wrote
    # on the erasure ticket when it was approved ("personal data erased").
    again = {h.service: h.erase(AU, acc) for h in desk.holders}
    assert {s: sum(e.erased.values()) for s, e in again.items() if sum(e.erased.values())} == {
        "support": 1
    }


#: Account A's home in the portal test, and where it is.
HOME = "Casa A, 7 Wattle Ave"


def _shown(world: Any, customer: Any, desk: Any, a: Any) -> dict[str, list[Any]]:
    """What account A's customer and support read of A, by what: texts from the REST API
    (bearer callers) and the portal's pages (``customer``, ``desk``: signed-in pages)
    — the photo, which only staff see, by status codes."""
    api = TestClient(world.app)
    me, staff = world.headers(Role.CUSTOMER), world.headers(Role.SUPPORT)
    v1 = "/api/v1/au"

    def text(client: Any, path: str, headers: dict[str, str] | None = None) -> str:
        got = client.get(path, headers=headers or {})
        assert got.status_code == 200, (path, got.status_code, got.text[:200])
        return str(got.text)

    order, photo = f"{v1}/workorders/{a.work_order}", f"/photos/{a.photo}"
    ui_order = f"/ui/au/workorders/{a.work_order}"
    return {
        "site": [
            text(api, f"{v1}/sites/{a.site}", me),
            text(api, f"{v1}/sites/{a.site}", staff),
            text(customer, f"/ui/au/sites/{a.site}"),
            text(desk, f"/ui/au/customers/{a.account}/sites/{a.site}"),
        ],
        "account": [
            text(api, f"{v1}/accounts/{a.account}", me),
            text(api, f"{v1}/accounts/{a.account}/contacts", staff),
            text(customer, "/ui/au/overview"),
            text(desk, f"/ui/au/customers/{a.account}"),
        ],
        "tickets": [
            text(api, f"{v1}/support/tickets", me),
            text(api, f"{v1}/support/tickets/{a.ticket}", staff),
            text(customer, TICKETS),
        ],
        "work_order": [
            text(api, order, staff),
            text(customer, ui_order),
            text(desk, ui_order),
        ],
        "photo": [
            api.get(order + photo, headers=staff).status_code,
            desk.get(ui_order + photo).status_code,
        ],
        "bill": [
            text(api, f"{v1}/documents/{a.bill}", me),
            text(customer, f"/ui/au/bills/{a.bill}"),
            text(desk, f"/ui/au/customers/{a.account}/bills/{a.bill}"),
        ],
        "payments": [text(api, f"{v1}/accounts/{a.account}/payments", staff)],
    }


@pytest.mark.parametrize(
    ("region", "kind", "received", "due", "extended"),
    [
        # GDPR: one calendar month (31 Jan → 28 Feb), extendable by two more.
        (Region.ES, Kind.DATA_EXPORT, date(2027, 1, 31), date(2027, 2, 28), date(2027, 4, 28)),
        (Region.ES, Kind.DATA_ERASURE, date(2026, 12, 6), date(2027, 1, 6), date(2027, 3, 6)),
        # Privacy Act: 30 days, no extension written in the law.
        (Region.AU, Kind.DATA_EXPORT, date(2026, 12, 6), date(2027, 1, 5), date(2027, 1, 5)),
        # CCPA: 45 days, once 45 more.
        (Region.US, Kind.DATA_ERASURE, date(2026, 12, 6), date(2027, 1, 20), date(2027, 3, 6)),
    ],
)
def test_legal_deadlines(
    region: Region, kind: Kind, received: date, due: date, extended: date
) -> None:
    term: LegalTerm = load_terms()[region][kind]
    assert legal_due(term, received) == due
    assert legal_due(term, received, extended=True) == extended


def test_through_the_portal(postgres_server_url: str, tmp_path: Path) -> None:
    """The customer raises both requests in the portal; the desk carries them out from
    the ticket's page; the customer downloads the copy; afterwards neither the REST API
    nor the portal's pages, as the customer or as support, show any of the customer's
    data (account A of the world: its address ``A@example.com``, its contact, its
    tickets' texts, its site's name and location, its work order's photo), while its
    invoice and payment, which tax law keeps, read as issued."""
    with private_world(postgres_server_url, tmp_path) as world:
        a = world.tenants["A"]
        with world.pool.connection() as conn:  # the site as a customer's home is recorded
            conn.execute(
                "UPDATE registry.sites SET name = %s, latitude = %s, longitude = %s WHERE id = %s",
                (HOME, LAT, LON, a.site),
            )
        with (
            page_client(world, Role.CUSTOMER) as customer,
            page_client(world, Role.SUPPORT) as desk,
        ):
            tickets = {}
            for kind in ("data_export", "data_erasure"):
                fields = form_fields(
                    customer, kind=kind, subject=f"{kind} of A", description="I am A@example.com"
                )
                raised = customer.post(TICKETS, data=fields, follow_redirects=False)
                assert raised.status_code == 303, raised.text[:300]
                tickets[kind] = int(raised.headers["location"].rsplit("/", 1)[1])
            export = tickets["data_export"]
            # AU: 30 days from the day it was raised, shown to the customer.
            due = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
            page = customer.get(f"{TICKETS}/{export}").text
            assert f'id="ticket-legal-due" data-date="{due}"' in page
            assert customer.get(f"{TICKETS}/{export}/export").status_code == 404  # not yet
            done = desk.post(
                f"{TICKETS}/{export}/act", data=form_fields(desk, action="privacy_export"),
                follow_redirects=False,
            )  # fmt: skip
            assert done.status_code == 303, done.text[:300]
            assert f"{TICKETS}/{export}/export" in customer.get(f"{TICKETS}/{export}").text
            got = customer.get(f"{TICKETS}/{export}/export")
            assert got.status_code == 200
            assert got.headers["content-type"] == "application/zip"
            archive = zipfile.ZipFile(io.BytesIO(got.content))
            people = json.loads(archive.read("customers.json"))
            assert [c["email"] for c in people["contacts"]] == ["a@example.com"]  # stored lower
            sites = json.loads(archive.read("registry.json"))["sites"]
            assert [(s["name"], s["latitude"]) for s in sites] == [(HOME, LAT)]
            assert archive.read(f"dispatch/photos/{a.photo}.png") == PNG
            assert len([p for p in (tmp_path / "photos").rglob("*.png")]) == 3  # A, B, E
            before = _shown(world, customer, desk, a)
            assert all(HOME in text for text in before["site"])
            assert all(str(LAT) in text for text in before["site"][:2])  # the API's
            assert all(code == 200 for code in before["photo"])
            assert "s14 ticket of A" in before["tickets"][1]
            assert all("a@example.com" in text.lower() for text in before["account"][1:2])
            account_page = f"/ui/au/customers/{a.account}"
            assert "Viewing as customer A " in desk.get(account_page).text

            erase = tickets["data_erasure"]
            customer_acts = customer.post(
                f"{TICKETS}/{erase}/act", data=form_fields(customer, action="erasure")
            )
            assert customer_acts.status_code == 403  # only the desk erases
            done = desk.post(
                f"{TICKETS}/{erase}/act", data=form_fields(desk, action="erasure"),
                follow_redirects=False,
            )  # fmt: skip
            assert done.status_code == 303, done.text[:300]
            for page in (account_page, f"{TICKETS}/{erase}", f"{TICKETS}/{export}"):
                shown = desk.get(page)
                assert shown.status_code == 200
                assert "a@example.com" not in shown.text.lower()
                assert "data_erasure of A" not in shown.text
                assert "Viewing as customer A " not in shown.text
            assert f"Viewing as customer erased {a.account}" in desk.get(account_page).text
            assert customer.get(f"{TICKETS}/{export}/export").status_code == 404  # deleted

            after = _shown(world, customer, desk, a)
            erased = (HOME, "Wattle", str(LAT), str(LON), "data_erasure of A", "s14 ticket of A")
            for what, texts in after.items():
                for text in texts if what != "photo" else ():
                    shown = [p for p in erased if p in text]
                    shown += ["email"] if "a@example.com" in str(text).lower() else []
                    assert shown == [], (what, shown)
            assert after["photo"] == [404, 404]
            # A's photo file is gone from the world's photo directory; B's and E's stay.
            assert len([p for p in (tmp_path / "photos").rglob("*.png")]) == 2
            assert all(f"site {a.site}" in text for text in after["site"])
            assert all(str(COARSE[0]) in text for text in after["site"][:2])
            # What tax law keeps: the invoice as issued (27.50) and its payment (10.00).
            for text in after["bill"]:
                assert a.bill in text
                assert "27.50" in text
            assert all("10.00" in text for text in after["payments"])
