"""Privacy requests end to end on a real PostgreSQL (issue 20 point 6): an account with
personal data in every service that holds some (seeded through those services, or as
their event handlers record it), exported through a ``data_export`` ticket and erased
through a ``data_erasure`` ticket. The export holds everything hand-listed below; after
the erasure only what the law keeps remains (billing's documents, the bare ticket and
work-order rows under the opaque account id), the customer can no longer sign in, and
the erasure record holds counts only."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from cloud.bootstrap import create_privacy_desk
from cloud.customers import CustomersService
from cloud.customers.models import AccountIn, ContactIn
from cloud.dispatch import DispatchService, FilesystemPhotoStorage
from cloud.events.types import CustomerAccount, GatewayRegistration
from cloud.events.users import UserChanged
from cloud.identity import Role
from cloud.identity.service import InvalidCredentials
from cloud.notify import recipients
from cloud.scope import Scope
from cloud.support import Actor, Kind, SupportService, TicketIn
from cloud.support.errors import ConflictError, NotFoundError
from cloud.support.privacy import LegalTerm, PrivacyDesk, legal_due, load_terms
from contracts.topics import Region
from tests.integration.api_world import (
    form_fields,
    insert_invoice,
    page_client,
    private_database,
    private_world,
)
from tests.integration.identity_harness import PASSWORD, identity_stack

AU = Region.AU
TICKETS = "/ui/au/support/tickets"
STAFF = "E00042"
NAME, EMAIL, PHONE = "Ana Pérez", "ana.perez@example.com", "+61400111222"
#: Text only this customer wrote: none of it may survive the erasure anywhere.
PERSONAL = [NAME, EMAIL, PHONE, "Rosa Pérez", "rosa@example.com", "12 Wattle St", "gate 4455"]


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    workdir = tmp_path_factory.mktemp("privacy")
    with private_database(postgres_server_url) as url, identity_stack(url, workdir) as ident:
        yield ident, workdir


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
    dispatch = DispatchService(pool, photos=FilesystemPhotoStorage(workdir / "photos"))
    gateway = GatewayRegistration(
        gateway_id="gw-privacy", site_id=7, region=AU, time_zone="Australia/Sydney",
        account_id=acc,
    )  # fmt: skip
    dispatch.record_gateway(uuid4(), gateway, datetime.now(UTC))
    order = dispatch.create(
        AU, 7, "inspection", "P3", "Check at 12 Wattle St", "Use gate 4455", STAFF
    )
    invoice = "AU-2026-0000001"
    insert_invoice(pool, AU, acc, 7, invoice)
    support = SupportService(pool, site_facts=lambda r, s: None, account_known=lambda r, a: True)
    me = Actor(user.id, "customer")
    complaint = support.create(
        AU, acc, TicketIn(kind=Kind.COMPLAINT, subject="Wrong bill", description="12 Wattle St"),
        me,
    )  # fmt: skip
    support.reply(complaint.id, Scope.of_account(AU, acc), me, "Call Rosa Pérez instead")
    return {"acc": acc, "user": user, "order": order.id, "invoice": invoice, "support": support,
            "complaint": complaint.id, "me": me}  # fmt: skip


def _request(seed: dict[str, Any], kind: Kind) -> int:
    given = TicketIn(kind=kind, subject=f"{kind.value} please", description=f"I am {NAME}")
    return int(seed["support"].create(AU, seed["acc"], given, seed["me"]).id)


def test_export_then_erasure(world: Any) -> None:
    ident, workdir = world
    seed = _seed(ident, workdir)
    acc, staff = seed["acc"], Scope.of_region(AU)
    desk: PrivacyDesk = create_privacy_desk(ident.pool)

    # -- export -----------------------------------------------------------------------
    ticket = _request(seed, Kind.DATA_EXPORT)
    ready = desk.export(ticket, staff, STAFF)
    with pytest.raises(ConflictError):  # once per ticket
        desk.export(ticket, staff, STAFF)
    with pytest.raises(NotFoundError):  # another account's scope does not reach it
        desk.download(ticket, Scope.of_account(AU, f"acc_{'0' * 32}"))
    archive = zipfile.ZipFile(io.BytesIO(desk.download(ticket, Scope.of_account(AU, acc))))
    assert ready.size > 0
    files = {n: json.loads(archive.read(n)) for n in archive.namelist()}
    expected_files = {"manifest.json"} | {
        f"{s}.json" for s in ("customers", "identity", "notify", "dispatch", "billing", "support")
    }
    assert set(files) == expected_files
    got = files["customers.json"]
    assert [(a["name"], a["email"]) for a in got["account"]] == [(NAME, EMAIL)]
    assert sorted((c["name"], c["email"], c["phone"]) for c in got["contacts"]) == [
        (NAME, EMAIL, PHONE), ("Rosa Pérez", "rosa@example.com", None)
    ]  # fmt: skip
    users = files["identity.json"]["users"]
    assert [(u["id"], u["email"], u["display_name"]) for u in users] == [
        (seed["user"].id, EMAIL, NAME)
    ]
    assert "password_hash" not in users[0]
    assert len(files["identity.json"]["sign_in_log"]) >= 1  # the login above
    assert [(a["name"], a["email"]) for a in files["notify.json"]["account"]] == [(NAME, EMAIL)]
    assert [p["user_id"] for p in files["notify.json"]["people"]] == [seed["user"].id]
    orders = files["dispatch.json"]["work_orders"]
    assert [(o["id"], o["title"], o["description"]) for o in orders] == [
        (seed["order"], "Check at 12 Wattle St", "Use gate 4455")
    ]
    assert [d["number"] for d in files["billing.json"]["documents"]] == [seed["invoice"]]
    tickets = files["support.json"]["tickets"]
    assert [(t["id"], t["kind"]) for t in tickets] == [
        (seed["complaint"], "complaint"), (ticket, "data_export")
    ]  # fmt: skip
    notes = [h["note"] for h in files["support.json"]["ticket_history"]]
    assert "Call Rosa Pérez instead" in notes
    manifest = files["manifest.json"]
    assert manifest["account_id"] == acc
    # AU: 30 days from the day the request was received.
    assert manifest["legal_due"] == (datetime.now(UTC).date() + timedelta(days=30)).isoformat()

    # -- erasure ----------------------------------------------------------------------
    erasure = _request(seed, Kind.DATA_ERASURE)
    record = desk.erase(erasure, staff, STAFF)
    with pytest.raises(ConflictError):
        desk.erase(erasure, staff, STAFF)
    # Counts by hand: 2 contacts and the account's name/email; 1 user, its 1 session;
    # notify's account copy and person; the work order's texts; support: 3 tickets' texts
    # (complaint, export, erasure), the export archive, the history notes written.
    assert record.counts["customers"] == {
        "erased": {"contacts": 2, "account_name_email": 1},
        "kept": {"account_id": 1, "plan_changes": 0},
    }
    assert record.counts["identity"]["erased"]["users"] == 1
    assert record.counts["identity"]["erased"]["refresh_tokens"] == 1
    assert record.counts["identity"]["kept"] == {"disabled_users": 1}
    assert record.counts["notify"]["erased"]["account"] == 1
    assert record.counts["notify"]["erased"]["people"] == 1
    assert record.counts["dispatch"] == {
        "erased": {"work_order_texts": 1, "signer_names": 0}, "kept": {"work_orders": 1}
    }  # fmt: skip
    assert record.counts["billing"] == {"erased": {}, "kept": {"documents": 1, "payments": 0}}
    assert record.counts["support"]["erased"]["ticket_texts"] == 3
    assert record.counts["support"]["erased"]["export_archives"] == 1
    assert record.counts["support"]["kept"] == {"tickets": 3}
    stored = desk.erasure(erasure, staff)
    assert stored is not None
    assert stored.counts == record.counts
    assert not any(p in json.dumps(stored.model_dump(mode="json")) for p in PERSONAL)

    # What remains, read as a new export would: none of the personal text, anywhere.
    after = {h.service: h.export(AU, acc) for h in desk.holders}
    dumped = json.dumps(after, default=str)
    assert [p for p in PERSONAL if p in dumped] == []
    assert after["customers"]["contacts"] == []
    assert [d["number"] for d in after["billing"]["documents"]] == [seed["invoice"]]
    assert [str(d["gross"]) for d in after["billing"]["documents"]] == [
        files["billing.json"]["documents"][0]["gross"]
    ]  # the amounts kept as issued (compared as the export printed them)
    assert all(u["disabled_at"] is not None for u in after["identity"]["users"])
    with pytest.raises(InvalidCredentials):  # the portal access has ended
        ident.service.login(EMAIL, PASSWORD, "203.0.113.10")
    with pytest.raises(NotFoundError):  # the archive went with the rest
        desk.download(ticket, Scope.of_account(AU, acc))


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
    the ticket's page; the customer downloads the copy; afterwards support's view of the
    account and the ticket's page show none of the customer's data (account A of the
    world: its address ``A@example.com``, its contact, its ticket's text)."""
    with private_world(postgres_server_url, tmp_path) as world:
        a = world.tenants["A"]
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
