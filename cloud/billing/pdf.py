"""A billing document as a PDF in the customer's language (issue 19 point 3): PoTR's
header, the document's kind, number and dates, the customer's account and site, the
period, the lines per tariff period (kWh, unit price, net), the taxes, the totals and
what to do by the due date, the document a note or cancellation corrects, and the usage
— billed kWh per tariff period, and a chart of the kWh per day of the period, stacked by
tariff period.

ReportLab draws it (platypus for the flow, ``reportlab.graphics`` for the chart); this is
the only module importing it. Words come from the portal's gettext catalogue (the
caller passes the language's translations, so English and Spanish are one catalogue
for the pages and the PDF); numbers, money and dates from Babel in that language, money
from its ``Decimal`` (the chart's bar heights alone are floats: drawing, not money).
:func:`render_document` is pure (bytes out of its arguments); :class:`BillPdfs` reads
the document through the read-only readers, scoped in SQL.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from cloud.billing.bills import BillLine, BillsReader, DocumentDetail
from cloud.billing.usage import DocumentUsage, UsageReader, billed_periods
from cloud.scope import Scope

__all__ = ["BillCustomer", "BillPdf", "BillPdfs", "render_document"]

#: Bar colours per tariff period, in the order the document uses them (colour-blind
#: safe: Okabe-Ito).
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
_WIDTH = A4[0] - 36 * mm
_CHARGES = ("invoice", "debit_note")


@dataclass(frozen=True)
class BillPdf:
    """What the PDF shows besides the document: the customer's name (None: the account
    id alone), the language (``en``/``es``) and its translations."""

    language: str
    translations: gettext.NullTranslations
    customer_name: str | None = None


@dataclass(frozen=True)
class BillCustomer:
    """What the customers side knows of an account for its PDF: its name and the
    language its person chose (None: not chosen)."""

    name: str
    language: str | None = None


class BillPdfs:
    """A document's PDF as the caller may read it: the document and its usage through
    the readers (scoped in SQL), in the customer's language — the one their person chose,
    else their region's (``es`` in Spain, else ``en``) — unless the caller asks for one.
    ``customer(account_id)`` answers for the customers side (None: no name, no choice).
    Blocking: call from a thread in async code."""

    def __init__(
        self,
        bills: BillsReader,
        usage: UsageReader,
        translations: Mapping[str, gettext.NullTranslations],
        *,
        customer: Callable[[str], BillCustomer | None] | None = None,
    ) -> None:
        self._bills = bills
        self._usage = usage
        self._translations = dict(translations)
        self._customer = customer

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._translations)

    def pdf(self, number: str, *, scope: Scope, language: str | None = None) -> bytes | None:
        """Document ``number`` as a PDF, or None outside ``scope``; ``language``: one of
        :attr:`languages`, else the customer's."""
        doc = self._bills.document(number, scope=scope)
        usage = self._usage.document(number, scope=scope)
        if doc is None or usage is None:
            return None
        who = self._customer(doc.account_id) if self._customer is not None else None
        chosen = language or (who.language if who is not None else None)
        if chosen not in self._translations:
            chosen = "es" if number.startswith("ES-") else "en"
        how = BillPdf(chosen, self._translations[chosen], who.name if who is not None else None)
        return render_document(doc, usage, how)


def render_document(doc: DocumentDetail, usage: DocumentUsage, how: BillPdf) -> bytes:
    """``doc`` and its ``usage`` as a one- or two-page A4 PDF in ``how.language``."""
    words = _Words(how.translations, how.language)
    buf = BytesIO()
    title = f"{words.kind(doc.kind)} {doc.number}"
    pdf = SimpleDocTemplate(
        buf,
        pagesize=A4,
        title=title,
        author="PoTR",
        subject=title,
        lang=how.language,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
    )
    story: list[Flowable] = [
        *_header(doc, how, words, title),
        *_lines(doc, words),
        *_totals(doc, words),
        *_usage(doc, usage, words),
    ]
    pdf.build(story)
    return buf.getvalue()


class _Words:
    """The language's words and formats."""

    def __init__(self, translations: gettext.NullTranslations, language: str) -> None:
        self._t = translations
        self.language = language

    def __call__(self, message: str, **values: Any) -> str:
        text = self._t.gettext(message)
        return text % values if values else text

    def kind(self, kind: str) -> str:
        _ = self
        return {
            "invoice": _("Invoice"),
            "credit_note": _("Credit note"),
            "debit_note": _("Debit note"),
            "cancellation": _("Cancellation"),
        }.get(kind, kind)

    def line(self, line: BillLine) -> str:
        _ = self
        if line.description_key == "energy":
            timed = bool(line.period and line.period != "flat")
            if line.plan_code and timed:
                return _(
                    "Energy, %(period)s period, plan %(plan)s",
                    period=line.period,
                    plan=line.plan_code,
                )
            if line.plan_code:
                return _("Energy, plan %(plan)s", plan=line.plan_code)
            if timed:
                return _("Energy, %(period)s period", period=line.period)
            return _("Energy")
        if line.description_key == "electricity_tax":
            return _("Electricity tax")
        if line.description_key == "part":
            return _("Part %(item)s", item=line.item or "")
        if line.description_key == "labour":
            return _("Labour on site")
        return line.description_key

    def period(self, period: str) -> str:
        _ = self
        return _("Single rate") if period == "flat" else period

    def money(self, amount: Decimal, currency: str) -> str:
        return format_currency(amount, currency, locale=self.language)

    def price(self, amount: Decimal, currency: str) -> str:
        """A unit price with every significant digit (a tariff's price is finer than the
        currency's cent), and never fewer than two decimals (``0,50 €``, not ``0,5 €``)."""
        shown = amount.normalize()
        if shown.as_tuple().exponent > -2:  # type: ignore[operator]
            shown = amount.quantize(Decimal("0.01"))
        return format_currency(
            shown, currency, locale=self.language, currency_digits=False,
            decimal_quantization=False,
        )  # fmt: skip

    def kwh(self, value: Decimal) -> str:
        return format_decimal(value, format="#,##0.000", locale=self.language)

    def date(self, value: date, form: str = "long") -> str:
        return format_date(value, form, locale=self.language)


def _styles() -> dict[str, ParagraphStyle]:
    sheet = getSampleStyleSheet()
    return {
        "brand": ParagraphStyle("brand", parent=sheet["Title"], alignment=0, fontSize=20),
        "title": ParagraphStyle("title", parent=sheet["Heading1"], fontSize=15),
        "h2": ParagraphStyle("h2", parent=sheet["Heading2"], fontSize=12),
        "body": sheet["BodyText"],
    }


def _para(text: str, style: str = "body") -> Paragraph:
    return Paragraph(escape(text), _styles()[style])


def _grid(rows: Sequence[Sequence[str]], widths: Sequence[float], *, head: bool = True) -> Table:
    """A table of text cells; numbers (every column but the first) right-aligned."""
    table = Table([list(r) for r in rows], colWidths=list(widths), hAlign="LEFT")
    style: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 9),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("LINEBELOW", (0, -1), (-1, -1), 0.5, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    if head:
        style += [
            ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 9),
            ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
        ]
    table.setStyle(TableStyle(style))
    return table


def _header(doc: DocumentDetail, how: BillPdf, _: _Words, title: str) -> list[Flowable]:
    facts = [
        (_("Issue date"), _.date(doc.issue_date)),
        (_("Due date"), _.date(doc.due_date)),
        (_("Period"), f"{_.date(doc.first_day)} \u2013 {_.date(doc.last_day)}"),
        (_("Account"), doc.account_id),
        (_("Site"), str(doc.site_id)),
    ]
    if how.customer_name:
        facts.insert(3, (_("Customer"), how.customer_name))
    info = _grid(facts, [45 * mm, _WIDTH - 45 * mm], head=False)
    info.setStyle(TableStyle([("ALIGN", (1, 0), (-1, -1), "LEFT")]))
    flow: list[Flowable] = [_para("PoTR — Power on the Roof", "brand"), _para(title, "title"), info]
    if doc.reference:
        flow.append(_para(_("Corrects %(number)s", number=doc.reference)))
    return [*flow, Spacer(1, 5 * mm)]


def _service_line(line: BillLine, currency: str, _: _Words) -> tuple[str, str]:
    """A part's count and unit price, or labour's minutes and hourly rate."""
    assert line.quantity is not None
    count = format_decimal(line.quantity, "#,##0.###", locale=_.language)
    unit = _.money(line.unit_price, currency) if line.unit_price is not None else ""
    if line.description_key == "labour":
        return _("%(minutes)s min", minutes=count), _("%(price)s per hour", price=unit)
    return count, unit


def _lines(doc: DocumentDetail, _: _Words) -> list[Flowable]:
    rows = [[_("Item"), _("Quantity"), _("Price"), _("Net")]]
    for line in doc.lines:
        if line.quantity is not None:  # a service line: a part, or labour
            quantity, price = _service_line(line, doc.currency, _)
            rows.append([_.line(line), quantity, price, _.money(line.net, doc.currency)])
            continue
        if line.kwh is not None:
            quantity = _("%(kwh)s kWh", kwh=_.kwh(line.kwh))
        else:
            quantity = _.money(line.base, doc.currency) if line.base is not None else ""
        if line.unit_price is not None:
            price = _("%(price)s per kWh", price=_.price(line.unit_price, doc.currency))
        else:
            price = f"{format_decimal(line.percent, '#,##0.0000', locale=_.language)} %" if (
                line.percent is not None
            ) else ""  # fmt: skip
        rows.append([_.line(line), quantity, price, _.money(line.net, doc.currency)])
    taxes = [[_("Tax"), _("Base"), _("Amount")]]
    for t in doc.taxes:
        percent = format_decimal(t.percent, "#,##0.00", locale=_.language)
        taxes.append(
            [f"{t.tax.upper()} {percent} %", _.money(t.base, doc.currency),
             _.money(t.amount, doc.currency)]
        )  # fmt: skip
    return [
        _para(_("Lines"), "h2"),
        _grid(rows, [_WIDTH * 0.34, _WIDTH * 0.2, _WIDTH * 0.26, _WIDTH * 0.2]),
        _para(_("Taxes"), "h2"),
        _grid(taxes, [_WIDTH * 0.34, _WIDTH * 0.33, _WIDTH * 0.33]),
    ]


def _totals(doc: DocumentDetail, _: _Words) -> list[Flowable]:
    rows = [
        [_("Net"), _.money(doc.net, doc.currency)],
        [_("Tax"), _.money(doc.tax, doc.currency)],
        [_("Total"), _.money(doc.gross, doc.currency)],
    ]
    table = _grid(rows, [_WIDTH * 0.8, _WIDTH * 0.2], head=False)
    table.setStyle(TableStyle([("FONT", (0, 2), (-1, 2), "Helvetica-Bold", 10)]))
    if doc.kind in _CHARGES:
        due = _("Total to pay by %(date)s", date=_.date(doc.due_date))
    else:
        due = _("Credited to your account")
    return [Spacer(1, 3 * mm), table, Spacer(1, 2 * mm), _para(due), Spacer(1, 4 * mm)]


def _usage(doc: DocumentDetail, usage: DocumentUsage, _: _Words) -> list[Flowable]:
    flow: list[Flowable] = [_para(_("Usage by tariff period"), "h2")]
    totals = billed_periods(doc.lines)
    rows = [[_("Tariff period"), "kWh"]]
    rows += [[_.period(p), _.kwh(kwh)] for p, kwh in totals.items()]
    rows.append([_("Total"), _.kwh(sum(totals.values(), Decimal(0)))])
    flow.append(_grid(rows, [_WIDTH * 0.5, _WIDTH * 0.25]))
    if usage.days:
        flow += [
            _para(_("Billed kWh per day"), "h2"),
            _chart(doc, usage, _),
        ]
    return flow


def _chart(doc: DocumentDetail, usage: DocumentUsage, _: _Words) -> Drawing:
    """Bars of kWh per day of the document's period, stacked by tariff period."""
    days = [
        date.fromordinal(n) for n in range(doc.first_day.toordinal(), doc.last_day.toordinal() + 1)
    ]
    index = {day: i for i, day in enumerate(days)}
    periods = [p for p in usage.periods if any(d.period == p for d in usage.days)]
    series = [[0.0] * len(days) for _p in periods]
    for d in usage.days:
        if d.day in index and d.period in periods:
            series[periods.index(d.period)][index[d.day]] += float(d.kwh)
    height = 62 * mm
    drawing = Drawing(_WIDTH, height)
    chart = VerticalBarChart()
    chart.x, chart.y = 12 * mm, 12 * mm
    chart.width, chart.height = _WIDTH - 16 * mm, height - 22 * mm
    chart.data = series
    chart.categoryAxis.style = "stacked"
    chart.categoryAxis.categoryNames = [str(day.day) for day in days]
    chart.categoryAxis.labels.fontSize = 6
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.labelTextFormat = _axis_format(_)
    chart.barSpacing = 0.5
    for i in range(len(periods)):
        chart.bars[i].fillColor = colors.HexColor(_PALETTE[i % len(_PALETTE)])
        chart.bars[i].strokeColor = None
    drawing.add(chart)
    drawing.add(String(0, height - 6, "kWh", fontName="Helvetica", fontSize=7))
    legend = Legend()
    legend.x, legend.y = 18 * mm, height - 2
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.fontSize = 7
    legend.deltax = 30 * mm
    legend.colorNamePairs = [
        (colors.HexColor(_PALETTE[i % len(_PALETTE)]), _.period(p)) for i, p in enumerate(periods)
    ]
    drawing.add(legend)
    return drawing


def _axis_format(_: _Words) -> Callable[[float], str]:
    def label(value: float) -> str:
        return format_decimal(value, format="#,##0.#", locale=_.language)

    return label
