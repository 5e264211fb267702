"""The SAP integration's settings (prefix ``POTR_SAP_``), typed; the password only from
the environment (``POTR_SAP_PASSWORD``) or a file only its owner may read
(``POTR_SAP_PASSWORD_FILE``), never logged (``SecretStr``; errors never echo values).

Production refuses plain ``http://`` and a missing password. The database is the
service's ``POTR_DATABASE_URL`` (:class:`cloud.settings.DatabaseSettings`), read apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.credentials import read_owner_only
from cloud.sap.documents import PostingRules
from contracts.topics import Region

__all__ = ["SapSettings"]

_SERVICE_NAME = r"^[A-Z][A-Z0-9_]{2,60}$"


class SapSettings(BaseSettings):
    """Where SAP is, how to reach it, how documents post, and how hard to retry."""

    model_config = SettingsConfigDict(
        env_prefix="POTR_SAP_", extra="ignore", hide_input_in_errors=True
    )

    #: ``POTR_ENV``: production refuses what suits only a laptop.
    env: Literal["dev", "test", "production"] = Field(
        default="dev", validation_alias=AliasChoices("POTR_ENV", "env")
    )
    #: The system's root, e.g. ``https://my123456-api.s4hana.cloud.sap`` (OData services
    #: live under ``/sap/opu/odata/sap/<SERVICE>/``).
    base_url: str = Field(default="http://127.0.0.1:50000", max_length=300)
    #: ``sap-client`` (the logon client, three digits).
    client: str = Field(default="100", pattern=r"^[0-9]{3}$")
    user: str = Field(default="POTR_INTEGRATION", min_length=1, max_length=40)
    password: SecretStr | None = None
    password_file: Path | None = None
    connect_timeout_s: float = Field(default=5.0, gt=0, le=60)
    #: How long one answer may take; past it the outcome is unknown (re-queried).
    read_timeout_s: float = Field(default=30.0, gt=0, le=300)

    #: Services (names in the path): business partners, the AR document create, and the
    #: AR item read used to find documents by reference and to reconcile.
    partner_service: str = Field(default="API_BUSINESS_PARTNER", pattern=_SERVICE_NAME)
    journal_entry_service: str = Field(default="API_JOURNALENTRY_SRV", pattern=_SERVICE_NAME)
    ar_items_service: str = Field(default="API_OPLACCTGDOCITEMCUBE_SRV", pattern=_SERVICE_NAME)
    #: Work orders: service orders and their confirmations (two services; OData V2 until
    #: the V4 migration in docs/sap.md).
    service_order_service: str = Field(default="API_SERVICE_ORDER_SRV", pattern=_SERVICE_NAME)
    confirmation_service: str = Field(default="API_SERVICE_CONFIRMATION_SRV", pattern=_SERVICE_NAME)
    service_order_type: str = Field(default="SVO1", pattern=r"^[A-Z0-9]{1,4}$")
    confirmation_type: str = Field(default="SVC1", pattern=r"^[A-Z0-9]{1,4}$")
    #: The service product labour time is confirmed on (hours).
    labour_product: str = Field(default="SRV_LABOUR", pattern=r"^[A-Z0-9_\-]{1,40}$")
    #: How often service orders changed in SAP are read back (rejected, completed).
    delta_poll_s: float = Field(default=300.0, gt=0, le=86_400)

    #: Company code per region, and the G/L accounts revenue and output tax post to.
    company_codes: dict[Region, str] = Field(
        default_factory=lambda: {Region.AU: "AU01", Region.US: "US01", Region.ES: "ES01"}
    )
    revenue_account: str = Field(default="41000000", pattern=r"^[0-9A-Z]{1,10}$")
    tax_account: str = Field(default="22000000", pattern=r"^[0-9A-Z]{1,10}$")
    invoice_document_type: str = Field(default="DR", pattern=r"^[A-Z0-9]{2}$")
    credit_document_type: str = Field(default="DG", pattern=r"^[A-Z0-9]{2}$")
    #: Payments and refunds: their journal-entry type and the bank clearing account.
    payment_document_type: str = Field(default="DZ", pattern=r"^[A-Z0-9]{2}$")
    bank_account: str = Field(default="11001000", pattern=r"^[0-9A-Z]{1,10}$")

    #: Documents per ``$batch`` (each its own change set).
    batch_size: int = Field(default=20, ge=1, le=200)
    #: Retries: full jitter below ``retry_first_s`` doubling up to ``retry_cap_s``; after
    #: ``max_attempts`` failed attempts the document is dead-lettered with the reason.
    retry_first_s: float = Field(default=5.0, gt=0, le=3600)
    retry_cap_s: float = Field(default=900.0, gt=0, le=86_400)
    max_attempts: int = Field(default=12, ge=1, le=100)
    #: A claimed row is another exporter's after this; must outlast a round's requests.
    lease_s: float = Field(default=300.0, gt=0, le=3600)
    #: Idle time between rounds when nothing was due.
    poll_s: float = Field(default=5.0, gt=0, le=600)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.password is not None and self.password_file is not None:
            raise ValueError("set POTR_SAP_PASSWORD or POTR_SAP_PASSWORD_FILE, not both")
        if self.env == "production":
            if not self.base_url.startswith("https://"):
                raise ValueError("production reaches SAP over https:// only")
            if self.password is None and self.password_file is None:
                raise ValueError("production needs POTR_SAP_PASSWORD or POTR_SAP_PASSWORD_FILE")
        if self.retry_cap_s < self.retry_first_s:
            raise ValueError("retry_cap_s is below retry_first_s")
        if self.lease_s < 2 * (self.connect_timeout_s + self.read_timeout_s):
            raise ValueError("lease_s must outlast two requests (connect + read timeouts)")
        missing = set(Region) - set(self.company_codes)
        if missing:
            raise ValueError(f"no company code for {sorted(r.value for r in missing)}")
        return self

    def secret(self) -> SecretStr | None:
        """The password: the environment's, else the file's (refused when group or
        others may read it, as ``ssh`` refuses a key)."""
        if self.password is not None or self.password_file is None:
            return self.password
        return SecretStr(read_owner_only(self.password_file).decode("utf-8").strip())

    def posting_rules(self, region: Region) -> PostingRules:
        """How ``region``'s documents post."""
        return PostingRules(
            company_code=self.company_codes[region],
            revenue_account=self.revenue_account,
            tax_account=self.tax_account,
            invoice_type=self.invoice_document_type,
            credit_type=self.credit_document_type,
            payment_type=self.payment_document_type,
            bank_account=self.bank_account,
        )
