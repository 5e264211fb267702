"""Reports (issue 20 point 4) over raw data written as the services store it
(:mod:`tests.integration.reports_seed`, whose docstring works every figure out by
hand): each report's table, its CSV and its PDF (read back with pypdf) hold those
figures; a region's scope reaches its own rows only; the cross-region pack adds the
regions' parts and works the ratios out again; the pack's e-mail, sent through a real
SMTP sink, carries the pack as a PDF in the admin's language, made when the mail is
built (and retried, then failed with the reason, when it cannot be made)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pypdf import PdfReader

from cloud.adapters.postgres import create_pool
from cloud.bootstrap import PACK_ATTACHMENT, regional_readers, report_pack_pdf, send_report_pack
from cloud.notify import (
    Attachment,
    Category,
    DeliveryWorker,
    MailAttachment,
    Notification,
    NotificationService,
    NotifySettings,
    PreferencesIn,
    Recipient,
)
from cloud.reports import (
    ReportsReader,
    ReportTable,
    build_pack,
    cell_text,
    csv_text,
    pack_month_due,
    render_pdf,
    svg_chart,
)
from cloud.scope import Scope
from contracts.topics import Region
from tests.integration.api_world import migrated_database
from tests.integration.notify_harness import mail_sink
from tests.integration.reports_seed import (
    ALERTS,
    ALERTS_ACROSS_TOTAL,
    ALERTS_TOTAL,
    FLEET_DAYS,
    FLEET_TOTAL,
    MOSIE,
    MOSIE_ACROSS_TOTAL,
    MOSIE_TOTAL,
    REVENUE,
    REVENUE_TOTAL,
    Pool,
    seed,
)

pytestmark = pytest.mark.integration

SEPTEMBER = date(2026, 9, 1)
AU = Scope.of_region(Region.AU)


@pytest.fixture(scope="module")
def pool(postgres_server_url: str) -> Iterator[Pool]:
    schemas = ("customers", "telemetry", "billing", "dispatch", "alerts", "notify", "support")
    with migrated_database(postgres_server_url, *schemas) as url:
        made = create_pool(url, max_size=2, name="test-reports")
        try:
            seed(made)
            yield made
        finally:
            made.close()


@pytest.fixture(scope="module")
def reader(pool: Pool) -> ReportsReader:
    return ReportsReader(pool)


def _cells(table: ReportTable, row: dict[str, Any]) -> list[str]:
    return [cell_text(c, row.get(c.key)) for c in table.columns]


def _rows(table: ReportTable) -> list[list[str]]:
    return [_cells(table, r) for r in table.rows]


def test_fleet_energy_availability_performance_and_completeness(reader: ReportsReader) -> None:
    table = reader.report("fleet", SEPTEMBER, scope=AU)
    assert table is not None
    rows = {int(r[0][-2:]): r[1:] for r in _rows(table)}
    assert len(rows) == 30
    for day, expected in FLEET_DAYS.items():
        assert rows[day] == expected, day
    assert rows[15] == ["1", "0", "0.0", "0.00", "22.00", "0.0", "0.00", "24", "0.0"]
    assert [_cells(table, t) for t in table.totals] == [FLEET_TOTAL]


def test_revenue_billed_energy_and_savings(reader: ReportsReader) -> None:
    table = reader.report("revenue", SEPTEMBER, scope=AU)
    assert table is not None
    assert _rows(table) == REVENUE
    assert [_cells(table, t) for t in table.totals] == [REVENUE_TOTAL]
    assert any("0.3000 AUD/kWh" in n and "unverified" in n for n in table.notes)


def test_mosie_jobs_sla_and_first_time_fix(reader: ReportsReader) -> None:
    table = reader.report("mosie", SEPTEMBER, scope=AU)
    assert table is not None
    assert _rows(table) == MOSIE
    assert [_cells(table, t) for t in table.totals] == [MOSIE_TOTAL]


def test_alert_volumes(reader: ReportsReader) -> None:
    table = reader.report("alerts", SEPTEMBER, scope=AU)
    assert table is not None
    assert _rows(table) == ALERTS
    assert [_cells(table, t) for t in table.totals] == [ALERTS_TOTAL]


def test_no_reports_outside_one_region_nor_for_an_account(reader: ReportsReader) -> None:
    assert reader.report("fleet", SEPTEMBER, scope=Scope.everything()) is None
    assert reader.report("fleet", SEPTEMBER, scope=Scope.of_account(Region.AU, "x")) is None
    us = reader.report("alerts", SEPTEMBER, scope=Scope.of_region(Region.US))
    assert us is not None
    assert _rows(us)[1] == ["high", "1", "0", "1"]


def test_csv_and_pdf_hold_the_tables_figures(reader: ReportsReader) -> None:
    for name, body, total in (
        ("revenue", REVENUE, REVENUE_TOTAL),
        ("mosie", MOSIE, MOSIE_TOTAL),
        ("alerts", ALERTS, ALERTS_TOTAL),
    ):
        table = reader.report(name, SEPTEMBER, scope=AU)
        assert table is not None
        lines = list(csv.reader(io.StringIO(csv_text(table))))
        assert lines[0] == [c.key for c in table.columns]
        assert lines[1:] == [*body, total], name
        pdf = render_pdf([table], {}, language="en")
        text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
        words = text.split()
        for row in [*body, total]:
            line = " ".join(cell for cell in row if cell)
            assert line in " ".join(words), (name, line)
        assert "<title>" in svg_chart(table, name)


def test_the_pack_combines_the_regions_tables(reader: ReportsReader) -> None:
    pack = build_pack({Region.AU: reader, Region.US: reader}, SEPTEMBER)
    assert set(pack.combined) == {"fleet", "revenue", "mosie", "alerts"}
    alerts = pack.combined["alerts"]
    assert alerts.region == "all"
    # au high 1 raised, 2 cleared, 2 annunciations + us high 1, 0, 1
    assert _rows(alerts)[1] == ["high", "2", "2", "3"]
    revenue = pack.combined["revenue"]
    # one total per currency: money of two currencies is never added
    assert [t["currency"] for t in revenue.totals] == ["AUD", "USD"]
    mosie = pack.combined["mosie"]
    assert [r[0] for r in _rows(mosie)] == ["E1", "E2", "E9"]
    fleet = pack.combined["fleet"]
    # day 1: au 1 site of 5 kWp (20 kWh) + us 1 site of 10 kWp (50 kWh); us September
    # yield 4.8: 22.00 + 48.00 expected; PR 70 / 70 = 100.0
    assert _rows(fleet)[0][1:7] == ["2", "2", "100.0", "70.00", "70.00", "100.0"]
    assert all(s >= 0 for s in pack.seconds.values())


def test_the_pack_reaches_each_regions_admins_once(pool: Pool, reader: ReportsReader) -> None:
    admin, operator = "usr_" + "1" * 32, "usr_" + "2" * 32
    with pool.connection() as conn:
        for user, role in ((admin, "admin"), (operator, "operator")):
            conn.execute(
                "INSERT INTO notify.people (user_id, role, region, source_at, email)"
                " VALUES (%s, %s, 'au', now(), 'boss@potr.example')",
                (user, role),
            )
    notifier = NotificationService(pool, NotifySettings(env="test"))
    pack = build_pack({Region.AU: reader}, SEPTEMBER)
    now = datetime(2026, 10, 1, 6, tzinfo=UTC)
    assert send_report_pack(notifier, pack, now) == 1
    assert send_report_pack(notifier, pack, now) == 1  # the same notification: no new entry
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT user_id, title, body FROM notify.inbox WHERE kind = 'reports_monthly_pack'"
        ).fetchall()
    assert len(rows) == 1
    user, title, body = rows[0]
    assert (user, title) == (admin, "Monthly reports for 2026-09")
    # au's figures (the seed): 44.50 kWh, PR 5.2 %, availability 6.7 %, 4 jobs, 33.3 %
    # first-time, 2 alarms raised, AUD 14.66 saved
    for figure in ("44.50 kWh", "5.2 %", "6.7 %", "4 jobs", "33.3 %", "2 alarms", "AUD 14.66"):
        assert figure in " ".join(body.split()), figure


def test_the_pack_is_due_once_a_month_from_its_hour() -> None:
    first = datetime(2026, 10, 1, 5, 59, tzinfo=UTC)
    assert pack_month_due(first, 6, None) is None
    assert pack_month_due(first.replace(hour=6), 6, None) == SEPTEMBER
    assert pack_month_due(first.replace(hour=6), 6, SEPTEMBER) is None
    assert pack_month_due(datetime(2026, 10, 9, tzinfo=UTC), 6, date(2026, 8, 1)) == SEPTEMBER


US_ADMIN = "usr_" + "3" * 32


@pytest.fixture
def us_admin(pool: Pool) -> Iterator[str]:
    """An admin of us who reads Spanish; removed with all notify holds of theirs, so
    the other pack test counts only its own."""
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO notify.people (user_id, role, region, source_at, email)"
            " VALUES (%s, 'admin', 'us', now(), 'jefa@potr.example')",
            (US_ADMIN,),
        )
    try:
        yield US_ADMIN
    finally:
        with pool.connection() as conn:
            conn.execute(
                "DELETE FROM notify.delivery_attempts WHERE delivery_id IN"
                " (SELECT id FROM notify.deliveries WHERE user_id = %s)",
                (US_ADMIN,),
            )
            for table in ("deliveries", "inbox", "preferences", "people"):
                conn.execute(f"DELETE FROM notify.{table} WHERE user_id = %s", (US_ADMIN,))


def _pdf_words(pdf: bytes) -> str:
    return " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf)).pages)


async def test_the_pack_mail_carries_the_pack_as_a_pdf_made_when_it_is_sent(
    pool: Pool, reader: ReportsReader, us_admin: str
) -> None:
    settings = {"env": "test", "smtp_host": "127.0.0.1", "notify_attempt_timeout_s": 30,
                "notify_smtp_concurrency": 4}  # fmt: skip
    notifier = NotificationService(pool, NotifySettings(env="test"))
    notifier.set_preferences(us_admin, PreferencesIn(language="es"))
    pack_pdf = report_pack_pdf(regional_readers(pool))
    calls: list[str] = []

    def flaky(key: str, language: str) -> MailAttachment:
        calls.append(key)
        if calls.count(key) == 1:
            raise OSError("the reports database is away")
        return pack_pdf(key, language)

    send_report_pack(notifier, build_pack({Region.US: reader}, SEPTEMBER), datetime.now(UTC))
    now = datetime.now(UTC)  # the service filed the mail due at its own clock's now
    with mail_sink() as (sink, port):
        config = NotifySettings(**settings, smtp_port=port)
        async with DeliveryWorker.open(pool, config, attachments={PACK_ATTACHMENT: flaky}) as w:
            await w.deliver_due(now)  # the file cannot be made: no mail, retried later
            status, attempts, error = _delivery(pool, us_admin)
            assert (status, attempts) == ("pending", 1)
            assert "the reports database is away" in error
            assert not [m for m in sink.messages if m["To"] == "jefa@potr.example"]
            await w.deliver_due(now + timedelta(hours=1))
        [mail] = [m for m in sink.messages if m["To"] == "jefa@potr.example"]

    assert calls.count("2026-09/us") == 2
    assert mail["Subject"] == "Informes mensuales de 2026-09"
    [pdf] = list(mail.iter_attachments())
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_filename() == "potr-reports-2026-09-us.pdf"
    content = pdf.get_content()
    words = _pdf_words(content)
    assert "Volumen de alertas" in words  # the admin's language
    # au's own tables (the seed's hand-worked figures) and the tables across the regions
    for row in (FLEET_TOTAL, REVENUE_TOTAL, MOSIE_TOTAL, ALERTS_TOTAL):
        assert " ".join(row) in words, row
    for row in (ALERTS_ACROSS_TOTAL, MOSIE_ACROSS_TOTAL):
        assert " ".join(row) in words, row
    assert content == pack_pdf("2026-09/us", "es").content  # made again: the same bytes


AU_ADMIN = "usr_" + "4" * 32


def test_a_regions_own_pack_holds_its_tables_only_and_reaches_its_admins_only(
    pool: Pool, us_admin: str
) -> None:
    """``POTR_SERVICES_REGION=us`` (a database per region): the pack is us's tables, no
    combined ones; the mail reaches us's admins and not au's; its PDF is the same pack."""
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO notify.people (user_id, role, region, source_at, email)"
            " VALUES (%s, 'admin', 'au', now(), 'au-boss@potr.example')",
            (AU_ADMIN,),
        )
    try:
        readers = regional_readers(pool)
        pack = build_pack(readers, SEPTEMBER, only=Region.US)
        assert pack.combined == {}
        assert set(pack.regional) >= {"fleet", "revenue", "mosie", "alerts"}
        assert [t.region for t in pack.tables()] == ["us"] * len(pack.regional)
        # us's seed: high 1 raised, 0 cleared, 1 annunciation (across 3, 2, 4 less au's
        # 2, 2, 3); one job, E9's, fixed first time
        alerts = pack.regional["alerts"][0]
        assert _cells(alerts, alerts.totals[0]) == ["total", "1", "0", "1"]
        headline = pack.headline()
        assert (headline["alarms"], headline["jobs"], headline["first_time_fix"]) == (
            "1", "1", "100.0",
        )  # fmt: skip
        notifier = NotificationService(pool, NotifySettings(env="test"))
        assert send_report_pack(notifier, pack, datetime(2026, 10, 1, 6, tzinfo=UTC)) == 1
        with pool.connection() as conn:
            rows = conn.execute(
                "SELECT user_id, title, link FROM notify.inbox"
                " WHERE kind = 'reports_monthly_pack_region' OR user_id = %s",
                (AU_ADMIN,),
            ).fetchall()
        assert rows == [
            (us_admin, "Monthly reports for 2026-09, US", "/ui/us/reports/all/fleet?month=2026-09")
        ]
        make = report_pack_pdf(readers, only=Region.US)
        words = _pdf_words(make("2026-09/us", "en").content)
        assert "total 1 0 1" in words
        for row in (ALERTS_TOTAL, ALERTS_ACROSS_TOTAL, MOSIE_ACROSS_TOTAL):
            assert " ".join(row) not in words, row  # neither au's nor across the regions
        with pytest.raises(ValueError, match="YYYY-MM/<region>"):
            make("2026-09/au", "en")
    finally:
        with pool.connection() as conn:
            for table in ("inbox", "people"):
                conn.execute(f"DELETE FROM notify.{table} WHERE user_id = %s", (AU_ADMIN,))


async def test_a_pack_mail_whose_file_cannot_be_made_fails_with_the_reason(
    pool: Pool, us_admin: str
) -> None:
    notifier = NotificationService(pool, NotifySettings(env="test"))
    now = datetime.now(UTC)
    notification = Notification(
        id=uuid.uuid4(), kind="reports_monthly_pack", category=Category.NOTICE,
        region=Region.US, params={k: "1" for k in ("month", "energy_kwh", "performance_ratio",
        "availability", "jobs", "first_time_fix", "alarms", "savings")},
        created_at=now, attachment=Attachment(kind="nothing_here", key="2026-09/us"),
    )  # fmt: skip
    notifier.notify(notification, [Recipient(user_id=us_admin, email="jefa@potr.example")])
    now = datetime.now(UTC)
    with mail_sink() as (sink, port):
        config = NotifySettings(
            env="test", smtp_host="127.0.0.1", smtp_port=port, notify_max_attempts=2
        )
        async with DeliveryWorker.open(pool, config) as worker:
            await worker.deliver_due(now)
            await worker.deliver_due(now + timedelta(hours=1))
        assert not sink.messages
    status, attempts, error = _delivery(pool, us_admin)
    assert (status, attempts) == ("failed", 2)
    assert "no source for 'nothing_here'" in error


def _delivery(pool: Pool, user_id: str) -> tuple[str, int, str]:
    """The status, attempts and last error of ``user_id``'s one e-mail delivery."""
    with pool.connection() as conn:
        [row] = conn.execute(
            "SELECT status, attempts, coalesce(last_error, '') FROM notify.deliveries"
            " WHERE user_id = %s",
            (user_id,),
        ).fetchall()
    return row[0], row[1], row[2]
