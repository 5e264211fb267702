"""The SAP adapter: OData V2 over ``pyodata`` and ``requests`` (the only module that
imports either; an import-linter contract keeps it so).

:class:`ODataSapGateway` implements :class:`~cloud.sap.documents.SapGateway`. Blocking:
callers run it in a thread. What it does on the wire, and why:

- **CSRF**: before the first write it fetches a token (``GET`` of a service root with
  ``X-CSRF-Token: Fetch``); the ``requests`` session keeps every cookie SAP sets with it
  (the token is bound to the login session those cookies carry: dropping them gives
  intermittent 403s). A write answered ``403`` with ``X-CSRF-Token: Required`` fetches a
  new token once and is sent once more — safe, since SAP refused it before doing anything.
- **$batch**: creates travel in one ``$batch``, each document in its own change set, so
  one refused document does not roll back the others; every part's status is read.
- **Errors** become :mod:`cloud.sap.errors` here, with SAP's message, code and
  ``transactionid`` (logged: SAP's error log is searched by it). A business error SAP
  puts in the ``sap-message`` header of a 2xx answer is an error too.
- **Timeouts**: a write that got no answer in time raises
  :class:`~cloud.sap.errors.SapTimeoutError` and is never sent again from here; the
  exporter re-queries by our reference first. Secrets never reach a log.

Which services (see ``docs/sap.md``): business partners in ``API_BUSINESS_PARTNER``
(``A_BusinessPartner``, our key in ``BusinessPartnerIDByExtSystem``); AR documents are
read back from ``API_OPLACCTGDOCITEMCUBE_SRV`` (``A_OperationalAcctgDocItemCube``, by
``DocumentReferenceID``). S/4HANA posts journal entries only over SOAP
(``JournalEntryCreateRequestConfirmation_In``); the OData V2 create used here
(``API_JOURNALENTRY_SRV``/``A_JournalEntry`` with its items) is the local fake's
stand-in, behind the same document-shaped interface, so the transport can change alone.
Work orders: service orders in ``API_SERVICE_ORDER_SRV`` (``A_ServiceOrder``, our
reference in ``ReferenceServiceOrder``, read back by change stamp for the delta poll) and
confirmations in ``API_SERVICE_CONFIRMATION_SRV`` (``A_ServiceConfirmation`` with its
items) — both OData V2, which SAP deprecated for V4: the protocol stays in this module
(:class:`~cloud.sap.service_documents.ServiceGateway` is all its callers see; the
migration path is in ``docs/sap.md``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import pyodata
import requests
from pyodata.exceptions import HttpError, PyODataException
from pyodata.v2.model import Config, ParserError, PolicyIgnore
from pyodata.v2.service import BatchRequest, Changeset, ODataHttpResponse

from cloud.sap.documents import (
    ArDocument,
    ArRecord,
    Created,
    Failed,
    Outcome,
    PartnerDraft,
    PartnerRecord,
    Refused,
    check_reference,
)
from cloud.sap.errors import (
    SapBusinessError,
    SapError,
    SapMessage,
    SapRefusedError,
    SapTimeoutError,
    SapUnavailableError,
)
from cloud.sap.service_documents import (
    ConfirmationDraft,
    ConfirmationRecord,
    ServiceOrderDraft,
    ServiceOrderRecord,
)
from cloud.sap.settings import SapSettings

__all__ = ["ODataSapGateway"]

log = logging.getLogger(__name__)

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "MERGE", "DELETE"})
#: Statuses after which SAP did nothing and may do it later: retry.
_TRANSIENT = frozenset({401, 403, 408, 423, 429})
#: References (or external ids) per ``$filter``: keeps the URL well under SAP's limits.
_FILTER_CHUNK = 20
#: Rows per page when listing a day's documents.
_PAGE = 500
_CUBE_FIELDS = (
    "CompanyCode,FiscalYear,AccountingDocument,AccountingDocumentItem,DocumentReferenceID,"
    "AmountInTransactionCurrency,TransactionCurrency,PostingDate,AccountingDocumentType,"
    "FinancialAccountType"
)
_PARTNER_FIELDS = (
    "BusinessPartner,BusinessPartnerIDByExtSystem,Customer,OrganizationBPName1,OrganizationBPName2"
)
#: What is read of a service order. ⚠ ``LastChangeDate`` (the change stamp the delta poll
#: filters on) and ``ServiceOrderRejectionReason``: verify the names on the tenant's
#: ``$metadata`` (docs/sap.md); V4 renames nothing else used here.
_SO_CHANGED = "LastChangeDate"
_SO_FIELDS = (
    "ServiceOrder,ReferenceServiceOrder,ServiceOrderDescription,ServiceDocumentPriority,"
    f"ServiceOrderIsRejected,ServiceOrderIsCompleted,ServiceOrderRejectionReason,{_SO_CHANGED}"
)
_CONF_FIELDS = "ServiceConfirmation,PurchaseOrderByCustomer,ServiceOrder"
_R = TypeVar("_R")


# -- errors ------------------------------------------------------------------------
def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return ""


def _messages(raw: Iterable[Any]) -> list[SapMessage]:
    out = []
    for item in raw:
        if isinstance(item, dict):
            out.append(
                SapMessage(
                    code=str(item.get("code", "")),
                    message=str(item.get("message", "")),
                    severity=str(item.get("severity", "error")),
                    target=str(item.get("target", item.get("propertyref", ""))),
                )
            )
    return out


def _error_body(content: bytes) -> tuple[str, str, str, list[SapMessage]]:
    """(message, code, transaction id, details) of SAP Gateway's JSON error body; the
    start of the text when it is not one (an HTML page from a proxy, XML)."""
    try:
        error = json.loads(content.decode("utf-8"))["error"]
        message = error.get("message", {})
        text = message.get("value", "") if isinstance(message, dict) else str(message)
        inner = error.get("innererror", {}) or {}
        return (
            str(text),
            str(error.get("code", "")),
            str(inner.get("transactionid", "")),
            _messages(inner.get("errordetails", []) or []),
        )
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return content[:200].decode("utf-8", "replace").strip() or "no error body", "", "", []


def _http_error(status: int, headers: Mapping[str, str], content: bytes, what: str) -> SapError:
    """The error of an answer with HTTP ``status``: transient → unavailable, any other
    4xx → business (the same request would be refused again)."""
    text, code, transaction, details = _error_body(content or b"")
    kind: type[SapError]
    kind = SapUnavailableError if status >= 500 or status in _TRANSIENT else SapBusinessError
    error = kind(
        f"{what}: {text}", status=status, code=code, transaction_id=transaction, details=details
    )
    log.warning(
        "SAP refused %s: HTTP %s %s %s (transaction %s)",
        what,
        status,
        code,
        text,
        transaction or "-",
    )
    return error


def _header_error(headers: Mapping[str, str]) -> SapMessage | None:
    """The error-severity message of a ``sap-message`` header, if the answer has one."""
    raw = _header(headers, "sap-message")
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    messages = [parsed, *parsed.get("details", [])] if isinstance(parsed, dict) else []
    for message in _messages(messages):
        if message.severity == "error":
            return message
    return None


def _raise_header_error(response: Any) -> None:
    """pyodata's response hook: a 2xx answer whose ``sap-message`` is an error is one."""
    if response.status_code < 300:
        message = _header_error(response.headers)
        if message is not None:
            log.warning(
                "SAP answered %s with an error message: %s %s",
                response.status_code,
                message.code,
                message.message,
            )
            raise SapBusinessError(
                message.message, status=response.status_code, code=message.code, details=[message]
            )


# -- the session: CSRF, cookies, timeouts ---------------------------------------------
class _SapSession(requests.Session):
    """A ``requests`` session that holds SAP's CSRF token beside its cookies, sends both
    on every write, refetches once when SAP says ``Required``, bounds every request by
    the settings' timeouts and turns transport failures into :mod:`cloud.sap.errors`."""

    def __init__(self, settings: SapSettings, fetch_url: str) -> None:
        super().__init__()
        self._fetch_url = fetch_url
        self._timeout = (settings.connect_timeout_s, settings.read_timeout_s)
        self._token: str | None = None
        self.params = {"sap-client": settings.client}
        secret = settings.secret()
        if secret is not None:
            self.auth = (settings.user, secret.get_secret_value())
        #: Token fetches so far (the first, and one per refusal).
        self.token_fetches = 0

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        verb = method.decode() if isinstance(method, bytes) else method
        kwargs.setdefault("timeout", self._timeout)
        if verb.upper() not in _UNSAFE:
            return self._send(verb, url, *args, **kwargs)
        if self._token is None:
            self._fetch_token()
        response = self._send_with_token(verb, url, *args, **kwargs)
        if response.status_code == 403 and _header(response.headers, "x-csrf-token").lower() == (
            "required"
        ):
            # Refused before SAP did anything (expired, or its session ended): once more.
            log.info("SAP: CSRF token refused; fetching a new one")
            self._token = None
            self._fetch_token()
            response = self._send_with_token(verb, url, *args, **kwargs)
        return response

    def _send_with_token(
        self, method: str, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        headers["X-CSRF-Token"] = self._token or ""
        return self._send(method, url, *args, headers=headers, **kwargs)

    def _fetch_token(self) -> None:
        self.token_fetches += 1
        response = self._send(
            "GET", self._fetch_url, headers={"X-CSRF-Token": "Fetch"}, timeout=self._timeout
        )
        token = _header(response.headers, "x-csrf-token")
        if response.status_code != 200 or not token or token.lower() == "required":
            raise _http_error(
                response.status_code if response.status_code != 200 else 503,
                response.headers,
                response.content,
                "CSRF token fetch",
            )
        self._token = token

    def _send(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        unsafe = method.upper() in _UNSAFE
        try:
            return super().request(method, url, *args, **kwargs)
        except requests.ConnectTimeout as exc:
            raise SapUnavailableError(f"SAP unreachable: {type(exc).__name__}") from None
        except (requests.ReadTimeout, requests.ConnectionError) as exc:
            # A write may have been carried out: only a query by reference can tell.
            kind = SapTimeoutError if unsafe else SapUnavailableError
            raise kind(f"no answer from SAP to {method}: {type(exc).__name__}") from None
        except requests.RequestException as exc:
            raise SapUnavailableError(f"SAP request failed: {type(exc).__name__}") from None


# -- the gateway ----------------------------------------------------------------------
def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _any_of(field: str, values: Sequence[str]) -> str:
    return "(" + " or ".join(f"{field} eq {_quoted(v)}" for v in values) + ")"


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise SapBusinessError(f"SAP returned {value!r} as an amount") from None


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


class ODataSapGateway:
    """:class:`~cloud.sap.documents.SapGateway` over OData V2. Each service's
    ``$metadata`` is read once, on first use; requests are built from it (an unknown
    property is refused before anything is sent)."""

    def __init__(self, settings: SapSettings) -> None:
        self._settings = settings
        root = settings.base_url.rstrip("/") + "/sap/opu/odata/sap/"
        self._urls = {
            "partners": root + settings.partner_service,
            "journal": root + settings.journal_entry_service,
            "items": root + settings.ar_items_service,
            "service_orders": root + settings.service_order_service,
            "confirmations": root + settings.confirmation_service,
        }
        self.session = _SapSession(settings, self._urls["partners"] + "/")
        self._services: dict[str, Any] = {}
        # pyodata logs every request's values at INFO: customers' names stay out of logs.
        logging.getLogger("pyodata").setLevel(logging.WARNING)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ODataSapGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pyodata plumbing -----------------------------------------------------------
    def _service(self, name: str) -> Any:
        service = self._services.get(name)
        if service is None:
            config = Config(custom_error_policies={ParserError.ANNOTATION: PolicyIgnore()})
            service = self._call(
                lambda: pyodata.Client(
                    self._urls[name],
                    self.session,
                    config=config,
                    response_hook=_raise_header_error,
                ),
                f"{name} $metadata",
            )
            self._services[name] = service
        return service

    @staticmethod
    def _call(action: Callable[[], _R], what: str) -> _R:
        """Run a pyodata action, its failures translated once."""
        try:
            return action()
        except HttpError as exc:
            response = exc.response
            raise _http_error(
                response.status_code, response.headers, response.content or b"", what
            ) from None
        except PyODataException as exc:
            # A request pyodata would not build from $metadata (unknown property …).
            raise SapRefusedError(f"{what}: {exc}") from None

    def _query(
        self,
        name: str,
        entity_set: str,
        filter_: str,
        select: str,
        top: int | None = None,
        skip: int | None = None,
        order_by: str | None = None,
    ) -> list[Any]:
        def run() -> list[Any]:
            request = (
                getattr(self._service(name).entity_sets, entity_set)
                .get_entities()
                .filter(filter_)
                .select(select)
            )
            if top is not None:
                request = request.top(top)
            if skip:
                request = request.skip(skip)
            if order_by:
                request = request.order_by(order_by)
            return list(request.execute())

        return self._call(run, f"query {entity_set}")

    def _batch(self, name: str, requests_: Sequence[Any], what: str) -> list[ODataHttpResponse]:
        """One ``$batch``, each request in its own change set; each change set's answer
        (its own, or the single error answer SAP gives for a refused change set)."""
        service = self._service(name)

        def handle(batch: Any, parts: list[Any]) -> list[ODataHttpResponse]:
            answers = []
            for part in parts:
                # A committed change set is a list of answers; a refused one, one answer.
                raw = part[0][0] if isinstance(part[0], list) else part[0]
                answers.append(ODataHttpResponse.from_string(raw))
            return answers

        batch = BatchRequest(service.url, service.connection, handle)
        for request in requests_:
            changeset = Changeset(service.url, service.connection, lambda cs, parts: parts)
            changeset.add_request(request)
            batch.add_request(changeset)
        answers: list[ODataHttpResponse] = self._call(batch.execute, what)
        if len(answers) != len(requests_):
            raise SapUnavailableError(f"{what}: {len(answers)} answers to {len(requests_)} parts")
        return answers

    @staticmethod
    def _outcome(
        answer: ODataHttpResponse, what: str
    ) -> tuple[dict[str, Any] | None, SapError | None, tuple[str, ...]]:
        """(created entity, error, warnings) of one change set's answer."""
        if answer.status_code != 201:
            return None, _http_error(answer.status_code, answer.headers, answer.content, what), ()
        warnings: tuple[str, ...] = ()
        error = _header_error(answer.headers)
        if error is not None:
            # Created all the same (it has a key): keep it, and keep what SAP said.
            warnings = (f"{error.code} {error.message}",)
            log.warning("SAP created %s with an error message: %s", what, warnings[0])
        return answer.json()["d"], None, warnings

    # -- business partners ------------------------------------------------------------
    def find_partners(self, external_ids: Sequence[str]) -> dict[str, list[PartnerRecord]]:
        found: dict[str, list[PartnerRecord]] = {e: [] for e in external_ids}
        for chunk in _chunks(list(external_ids), _FILTER_CHUNK):
            rows = self._query(
                "partners",
                "A_BusinessPartner",
                _any_of("BusinessPartnerIDByExtSystem", chunk),
                _PARTNER_FIELDS,
            )
            for row in rows:
                record = self._partner(row)
                found.setdefault(record.external_id, []).append(record)
        return found

    @staticmethod
    def _partner(row: Any) -> PartnerRecord:
        values = (
            row
            if isinstance(row, dict)
            else {k: getattr(row, k) for k in _PARTNER_FIELDS.split(",")}
        )
        partner = str(values["BusinessPartner"])
        name = f"{values.get('OrganizationBPName1') or ''}{values.get('OrganizationBPName2') or ''}"
        return PartnerRecord(
            partner=partner,
            external_id=str(values.get("BusinessPartnerIDByExtSystem") or ""),
            # A partner in the customer role has a customer number (often its own).
            customer=str(values.get("Customer") or partner),
            name=name,
        )

    def create_partners(self, drafts: Sequence[PartnerDraft]) -> list[Outcome[PartnerRecord]]:
        entity_set = self._service("partners").entity_sets.A_BusinessPartner
        requests_ = []
        for draft in drafts:
            name1, name2 = draft.name_parts
            values: dict[str, Any] = {
                "BusinessPartnerCategory": draft.category,
                "OrganizationBPName1": name1,
                "BusinessPartnerIDByExtSystem": draft.external_id,
                "to_BusinessPartnerRole": [{"BusinessPartnerRole": draft.role}],
            }
            if name2:
                values["OrganizationBPName2"] = name2
            requests_.append(_create_request(self._call, entity_set, values, "partner"))
        answers = self._batch("partners", requests_, "create business partners")
        outcomes: list[Outcome[PartnerRecord]] = []
        for draft, answer in zip(drafts, answers, strict=True):
            entity, error, warnings = self._outcome(answer, f"partner {draft.external_id}")
            record = self._partner(entity) if entity is not None else None
            outcomes.append(_as_outcome(record, error, warnings))
        return outcomes

    def rename_partner(self, partner: PartnerRecord, draft: PartnerDraft) -> None:
        name1, name2 = draft.name_parts
        entity_set = self._service("partners").entity_sets.A_BusinessPartner
        self._call(
            lambda: (
                entity_set.update_entity(BusinessPartner=partner.partner, method="MERGE")
                .set(OrganizationBPName1=name1, OrganizationBPName2=name2)
                .execute()
            ),
            f"rename partner {partner.partner}",
        )

    # -- AR documents -------------------------------------------------------------------
    def find_documents(
        self, company_code: str, references: Sequence[str]
    ) -> dict[str, list[ArRecord]]:
        found: dict[str, list[ArRecord]] = {r: [] for r in references}
        for chunk in _chunks([check_reference(r) for r in references], _FILTER_CHUNK):
            rows = self._query(
                "items",
                "A_OperationalAcctgDocItemCube",
                f"CompanyCode eq {_quoted(company_code)} and FinancialAccountType eq 'D'"
                f" and {_any_of('DocumentReferenceID', chunk)}",
                _CUBE_FIELDS,
            )
            for record in self._ar_records(rows):
                found.setdefault(record.reference, []).append(record)
        return found

    def documents_posted_on(self, company_code: str, day: date) -> list[ArRecord]:
        filter_ = (
            f"CompanyCode eq {_quoted(company_code)} and FinancialAccountType eq 'D'"
            f" and PostingDate eq datetime'{day.isoformat()}T00:00:00'"
        )
        records: list[ArRecord] = []
        while True:
            rows = self._query(
                "items",
                "A_OperationalAcctgDocItemCube",
                filter_,
                _CUBE_FIELDS,
                top=_PAGE,
                skip=len(records),
            )
            records.extend(self._ar_records(rows))
            if len(rows) < _PAGE:
                return records

    @staticmethod
    def _ar_records(rows: Iterable[Any]) -> list[ArRecord]:
        # One customer line per document: summed per key all the same (a document
        # with two customer lines is still one document).
        by_key: dict[tuple[str, str, str], ArRecord] = {}
        for row in rows:
            key = (str(row.CompanyCode), str(row.FiscalYear), str(row.AccountingDocument))
            amount = _decimal(row.AmountInTransactionCurrency)
            seen = by_key.get(key)
            if seen is not None:
                amount += seen.amount
            by_key[key] = ArRecord(
                reference=str(row.DocumentReferenceID),
                company_code=key[0],
                fiscal_year=key[1],
                accounting_document=key[2],
                currency=str(row.TransactionCurrency),
                amount=amount,
                posting_date=_day(row.PostingDate),
                document_type=str(row.AccountingDocumentType),
            )
        return list(by_key.values())

    def post_documents(self, documents: Sequence[ArDocument]) -> list[Outcome[ArRecord]]:
        for document in documents:
            check_reference(document.reference)  # refused here, before anything is sent
        entity_set = self._service("journal").entity_sets.A_JournalEntry
        requests_ = [
            _create_request(self._call, entity_set, self._entry(d), f"journal entry {d.reference}")
            for d in documents
        ]
        answers = self._batch("journal", requests_, "post journal entries")
        outcomes: list[Outcome[ArRecord]] = []
        for document, answer in zip(documents, answers, strict=True):
            entity, error, warnings = self._outcome(answer, f"journal entry {document.reference}")
            record = None
            if entity is not None:
                record = ArRecord(
                    reference=document.reference,
                    company_code=str(entity["CompanyCode"]),
                    fiscal_year=str(entity["FiscalYear"]),
                    accounting_document=str(entity["AccountingDocument"]),
                    currency=document.currency,
                    amount=document.customer_amount,
                    posting_date=document.posting_date,
                    document_type=document.document_type,
                )
            outcomes.append(_as_outcome(record, error, warnings))
        return outcomes

    @staticmethod
    def _entry(document: ArDocument) -> dict[str, Any]:
        """The stand-in's ``A_JournalEntry`` with its items (deep insert). ``FiscalYear``
        is part of its key and is sent as the posting year; SAP's SOAP post derives it
        from the fiscal year variant instead."""
        items = []
        for line in document.lines:
            item: dict[str, Any] = {
                "DebitCreditCode": line.debit_credit,
                "AmountInTransactionCurrency": str(line.amount),
                "TransactionCurrency": document.currency,
                "DocumentItemText": line.text,
                "AssignmentReference": document.assignment,
                "FinancialAccountType": "D" if line.role == "customer" else "S",
            }
            if line.role == "customer":
                item["Customer"] = line.customer
            else:
                item["GLAccount"] = line.gl_account
            items.append(item)
        return {
            "CompanyCode": document.company_code,
            "FiscalYear": str(document.posting_date.year),
            "AccountingDocumentType": document.document_type,
            "DocumentDate": _midnight(document.document_date),
            "PostingDate": _midnight(document.posting_date),
            "TransactionCurrency": document.currency,
            "DocumentReferenceID": document.reference,
            "AccountingDocumentHeaderText": document.header_text,
            "to_JournalEntryItem": items,
        }

    # -- service orders and confirmations ----------------------------------------------
    def find_service_orders(self, references: Sequence[str]) -> dict[str, list[ServiceOrderRecord]]:
        found: dict[str, list[ServiceOrderRecord]] = {r: [] for r in references}
        for chunk in _chunks(list(references), _FILTER_CHUNK):
            rows = self._query(
                "service_orders",
                "A_ServiceOrder",
                _any_of("ReferenceServiceOrder", chunk),
                _SO_FIELDS,
            )
            for row in rows:
                record = _service_order(row)
                found.setdefault(record.reference, []).append(record)
        return found

    def create_service_orders(
        self, drafts: Sequence[ServiceOrderDraft]
    ) -> list[Outcome[ServiceOrderRecord]]:
        entity_set = self._service("service_orders").entity_sets.A_ServiceOrder
        requests_ = []
        for draft in drafts:
            values: dict[str, Any] = {
                "ServiceOrderType": draft.order_type,
                "ServiceOrderDescription": draft.description,
                "SoldToParty": draft.sold_to,
                "ServiceDocumentPriority": draft.priority,
                "ReferenceServiceOrder": draft.reference,
            }
            if draft.requested_start is not None:
                values["RequestedServiceStartDateTime"] = draft.requested_start
            if draft.rejected:
                values["ServiceOrderIsRejected"] = True
            requests_.append(_create_request(self._call, entity_set, values, draft.reference))
        answers = self._batch("service_orders", requests_, "create service orders")
        outcomes: list[Outcome[ServiceOrderRecord]] = []
        for draft, answer in zip(drafts, answers, strict=True):
            entity, error, warnings = self._outcome(answer, f"service order {draft.reference}")
            record = None
            if entity is not None:
                record = ServiceOrderRecord(
                    service_order=str(entity["ServiceOrder"]),
                    reference=draft.reference,
                    description=draft.description,
                    priority=draft.priority,
                    rejected=draft.rejected,
                )
            outcomes.append(_as_outcome(record, error, warnings))
        return outcomes

    def update_service_order(self, service_order: str, draft: ServiceOrderDraft) -> None:
        values: dict[str, Any] = {
            "ServiceOrderDescription": draft.description,
            "ServiceDocumentPriority": draft.priority,
        }
        if draft.rejected:
            values["ServiceOrderIsRejected"] = True
        entity_set = self._service("service_orders").entity_sets.A_ServiceOrder
        self._call(
            lambda: (
                entity_set.update_entity(ServiceOrder=service_order, method="MERGE")
                .set(**values)
                .execute()
            ),
            f"update service order {service_order}",
        )

    def service_orders_changed_since(
        self, since: datetime | None, prefix: str
    ) -> list[ServiceOrderRecord]:
        filter_ = f"startswith(ReferenceServiceOrder,{_quoted(prefix)}) eq true"
        if since is not None:
            stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
            filter_ += f" and {_SO_CHANGED} ge datetime'{stamp}'"
        records: list[ServiceOrderRecord] = []
        while True:
            rows = self._query(
                "service_orders",
                "A_ServiceOrder",
                filter_,
                _SO_FIELDS,
                top=_PAGE,
                skip=len(records),
                order_by=f"{_SO_CHANGED},ServiceOrder",
            )
            records.extend(_service_order(row) for row in rows)
            if len(rows) < _PAGE:
                return records

    def find_confirmations(self, references: Sequence[str]) -> dict[str, list[ConfirmationRecord]]:
        found: dict[str, list[ConfirmationRecord]] = {r: [] for r in references}
        for chunk in _chunks(list(references), _FILTER_CHUNK):
            rows = self._query(
                "confirmations",
                "A_ServiceConfirmation",
                _any_of("PurchaseOrderByCustomer", chunk),
                _CONF_FIELDS,
            )
            for row in rows:
                record = ConfirmationRecord(
                    confirmation=str(row.ServiceConfirmation),
                    reference=str(row.PurchaseOrderByCustomer),
                    service_order=str(row.ServiceOrder or ""),
                )
                found.setdefault(record.reference, []).append(record)
        return found

    def create_confirmations(
        self, drafts: Sequence[ConfirmationDraft]
    ) -> list[Outcome[ConfirmationRecord]]:
        entity_set = self._service("confirmations").entity_sets.A_ServiceConfirmation
        requests_ = [
            _create_request(self._call, entity_set, _confirmation(d), d.reference) for d in drafts
        ]
        answers = self._batch("confirmations", requests_, "create service confirmations")
        outcomes: list[Outcome[ConfirmationRecord]] = []
        for draft, answer in zip(drafts, answers, strict=True):
            entity, error, warnings = self._outcome(answer, f"confirmation {draft.reference}")
            record = None
            if entity is not None:
                record = ConfirmationRecord(
                    str(entity["ServiceConfirmation"]), draft.reference, draft.service_order
                )
            outcomes.append(_as_outcome(record, error, warnings))
        return outcomes


def _service_order(row: Any) -> ServiceOrderRecord:
    changed = getattr(row, _SO_CHANGED)
    if isinstance(changed, datetime) and changed.tzinfo is None:
        changed = changed.replace(tzinfo=UTC)
    return ServiceOrderRecord(
        service_order=str(row.ServiceOrder),
        reference=str(row.ReferenceServiceOrder or ""),
        description=str(row.ServiceOrderDescription or ""),
        priority=str(row.ServiceDocumentPriority or ""),
        rejected=bool(row.ServiceOrderIsRejected),
        completed=bool(row.ServiceOrderIsCompleted),
        reason=str(row.ServiceOrderRejectionReason or ""),
        changed_at=changed if isinstance(changed, datetime) else None,
    )


def _confirmation(draft: ConfirmationDraft) -> dict[str, Any]:
    """The confirmation with its items (deep insert): labour first (hours), then a
    line per part number."""
    items: list[dict[str, Any]] = [
        {
            "ServiceConfirmationItem": "10",
            "ServiceConfItemCategory": "SRVP",
            "Product": draft.labour_product,
            "ActualServiceDuration": str(draft.labour_hours),
            "ActualServiceDurationUnit": "H",
        }
    ]
    for n, part in enumerate(draft.parts, start=2):
        items.append(
            {
                "ServiceConfirmationItem": str(n * 10),
                "ServiceConfItemCategory": "SSPP",
                "Product": part.part_no,
                "Quantity": str(part.quantity),
                "QuantityUnit": "EA",
            }
        )
    return {
        "ServiceConfirmationType": draft.confirmation_type,
        "ServiceConfirmationDescription": draft.description,
        "SoldToParty": draft.sold_to,
        "ServiceOrder": draft.service_order,
        "PurchaseOrderByCustomer": draft.reference,
        "ServiceConfirmationIsFinal": True,
        "to_Item": items,
    }


def _create_request(
    call: Callable[[Callable[[], Any], str], Any],
    entity_set: Any,
    values: dict[str, Any],
    what: str,
) -> Any:
    """pyodata's create request for ``values`` (checked against ``$metadata``)."""
    return call(lambda: entity_set.create_entity().set(**values), f"build {what}")


def _as_outcome(
    record: _R | None, error: SapError | None, warnings: tuple[str, ...]
) -> Outcome[_R]:
    if record is not None:
        return Created(record, warnings)
    if isinstance(error, SapBusinessError):
        return Refused(error)
    if isinstance(error, SapUnavailableError):
        return Failed(error)
    return Failed(SapUnavailableError(str(error) if error else "no answer for this change set"))
