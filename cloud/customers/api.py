"""Customers REST routes, relative to a regional prefix that carries ``{region}``
(the portal mounts them under ``/api/v1/{region}``): every record is read and written in
the region of the URL, and a record of another region answers 404.

The portal passes in its read/write authorisation dependencies (401/403 are theirs) and,
optionally, ``site_exists`` (the registry's answer), so an installation record is taken
only for a site the registry knows in that region. The service's refusals propagate:
the portal's exception handlers answer them (404, 409, 422 naming field/limit/reason).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from starlette.concurrency import run_in_threadpool

from cloud.customers.models import (
    ACCOUNT_ID_PATTERN,
    MAX_SITE_ID,
    SERIAL_PATTERN,
    Account,
    AccountIn,
    AccountPatch,
    Contact,
    ContactIn,
    DeviceWarranty,
    Installation,
    InstallationIn,
    MeterReplacement,
    MeterReplacementIn,
    WarrantyIn,
)
from cloud.customers.service import CustomersService
from contracts.topics import Region

RegionPath = Annotated[Region, Path(description="the region whose data this is")]
AccountIdPath = Annotated[
    str,
    Path(pattern=ACCOUNT_ID_PATTERN, min_length=36, max_length=36, examples=["acc_" + "0" * 32]),
]
SiteIdPath = Annotated[int, Path(ge=1, le=MAX_SITE_ID, description="the registry's site id")]
ContactIdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
SerialPath = Annotated[str, Path(pattern=SERIAL_PATTERN, max_length=64)]
Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="rows to skip")]

Responses = dict[int | str, dict[str, Any]]
#: What the portal's authorisation dependencies and FastAPI's validation answer anywhere.
_ALWAYS: Responses = {
    401: {"description": "no valid bearer token"},
    403: {"description": "the caller may not do this here"},
    422: {
        "description": "a path, query or body field out of its bounds (detail names it),"
        " or a record its rules refuse (detail: field, limit, reason)"
    },
}


def _answers(**extra: str) -> Responses:
    """:data:`_ALWAYS` plus ``{status: description}`` given as ``s404="..."``."""
    return {**_ALWAYS, **{int(k[1:]): {"description": v} for k, v in extra.items()}}


def create_router(
    service: CustomersService,
    *,
    read: Callable[..., Any],
    write: Callable[..., Any],
    site_exists: Callable[[Region, int], bool] | None = None,
) -> APIRouter:
    """Routes under ``/accounts`` and ``/sites/{site_id}/…``; ``read``/``write``
    authorise; ``site_exists(region, site_id)`` (blocking; run in a thread) vets
    installation records."""
    router = APIRouter(tags=["customers"])
    readers = [Depends(read)]
    writers = [Depends(write)]

    # -- accounts -----------------------------------------------------------------------
    @router.get(
        "/accounts",
        response_model=list[Account],
        dependencies=readers,
        summary="List the region's customer accounts",
        responses=_answers(),
    )
    async def list_accounts(
        region: RegionPath, limit: Limit = 100, offset: Offset = 0
    ) -> list[Account]:
        return await run_in_threadpool(service.list_accounts, region, limit=limit, offset=offset)

    @router.post(
        "/accounts",
        response_model=Account,
        status_code=status.HTTP_201_CREATED,
        dependencies=writers,
        summary="Create a customer account at home in this region",
        responses=_answers(s409="the user already has an account"),
    )
    async def add_account(region: RegionPath, body: AccountIn) -> Account:
        return await run_in_threadpool(service.add_account, region, body)

    @router.get(
        "/accounts/{account_id}",
        response_model=Account,
        dependencies=readers,
        summary="One account",
        responses=_answers(s404="no such account in this region"),
    )
    async def get_account(region: RegionPath, account_id: AccountIdPath) -> Account:
        account = await run_in_threadpool(service.get_account, account_id, region)
        if account is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"account {account_id} not found")
        return account

    @router.patch(
        "/accounts/{account_id}",
        response_model=Account,
        dependencies=writers,
        summary="Change an account's name, email, plan, user or status",
        responses=_answers(
            s404="no such account in this region",
            s409="the account is closed, or the user already has another account",
        ),
    )
    async def update_account(
        region: RegionPath, account_id: AccountIdPath, body: AccountPatch
    ) -> Account:
        return await run_in_threadpool(service.update_account, account_id, body, region)

    # -- contacts -----------------------------------------------------------------------
    @router.get(
        "/accounts/{account_id}/contacts",
        response_model=list[Contact],
        dependencies=readers,
        summary="An account's contacts",
        responses=_answers(s404="no such account in this region"),
    )
    async def list_contacts(region: RegionPath, account_id: AccountIdPath) -> list[Contact]:
        return await run_in_threadpool(service.list_contacts, region, account_id)

    @router.post(
        "/accounts/{account_id}/contacts",
        response_model=Contact,
        status_code=status.HTTP_201_CREATED,
        dependencies=writers,
        summary="Add a contact",
        responses=_answers(
            s404="no such account in this region",
            s409="a second primary contact, or the account's contacts are full",
        ),
    )
    async def add_contact(
        region: RegionPath, account_id: AccountIdPath, body: ContactIn
    ) -> Contact:
        return await run_in_threadpool(service.add_contact, region, account_id, body)

    @router.delete(
        "/accounts/{account_id}/contacts/{contact_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        dependencies=writers,
        summary="Remove a contact",
        responses=_answers(s404="no such account in this region, or no such contact"),
    )
    async def remove_contact(
        region: RegionPath, account_id: AccountIdPath, contact_id: ContactIdPath
    ) -> Response:
        await run_in_threadpool(service.remove_contact, region, account_id, contact_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    # -- installation -------------------------------------------------------------------
    @router.get(
        "/sites/{site_id}/installation",
        response_model=Installation,
        dependencies=readers,
        summary="A site's installation record",
        responses=_answers(s404="the site has no installation record"),
    )
    async def get_installation(region: RegionPath, site_id: SiteIdPath) -> Installation:
        found = await run_in_threadpool(service.get_installation, region, site_id)
        if found is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"site {site_id} has no installation record"
            )
        return found

    @router.put(
        "/sites/{site_id}/installation",
        response_model=Installation,
        dependencies=writers,
        summary="Record or replace a site's installation record",
        description="201 when recorded, 200 when replaced. The billing meter changes only "
        "through a meter replacement.",
        responses=_answers(
            s200="replaced",
            s201="recorded",
            s404="no such site in this region",
            s409="it would change the billing meter (record a meter replacement)",
        ),
    )
    async def put_installation(
        region: RegionPath, site_id: SiteIdPath, body: InstallationIn, response: Response
    ) -> Installation:
        if site_exists is not None and not await run_in_threadpool(site_exists, region, site_id):
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"site {site_id} does not exist in {region.value}"
            )
        record, created = await run_in_threadpool(service.put_installation, region, site_id, body)
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return record

    # -- meter replacements -------------------------------------------------------------
    @router.get(
        "/sites/{site_id}/meter-replacements",
        response_model=list[MeterReplacement],
        dependencies=readers,
        summary="A site's billing-meter replacements, in time order",
        responses=_answers(s404="the site has no installation record"),
    )
    async def list_meter_replacements(
        region: RegionPath, site_id: SiteIdPath, limit: Limit = 100, offset: Offset = 0
    ) -> list[MeterReplacement]:
        return await run_in_threadpool(
            service.list_meter_replacements, region, site_id, limit=limit, offset=offset
        )

    @router.post(
        "/sites/{site_id}/meter-replacements",
        response_model=MeterReplacement,
        status_code=status.HTTP_201_CREATED,
        dependencies=writers,
        summary="Record a billing-meter replacement with both registers",
        responses=_answers(
            s404="the site has no installation record",
            s409="the old serial is not the site's billing meter",
        ),
    )
    async def record_meter_replacement(
        region: RegionPath, site_id: SiteIdPath, body: MeterReplacementIn
    ) -> MeterReplacement:
        return await run_in_threadpool(service.record_meter_replacement, region, site_id, body)

    # -- device warranties --------------------------------------------------------------
    @router.get(
        "/sites/{site_id}/warranties",
        response_model=list[DeviceWarranty],
        dependencies=readers,
        summary="The warranties of a site's devices, by serial",
        responses=_answers(s404="the site has no installation record"),
    )
    async def list_warranties(
        region: RegionPath, site_id: SiteIdPath, limit: Limit = 100, offset: Offset = 0
    ) -> list[DeviceWarranty]:
        return await run_in_threadpool(
            service.list_warranties, region, site_id, limit=limit, offset=offset
        )

    @router.put(
        "/sites/{site_id}/warranties/{serial}",
        response_model=DeviceWarranty,
        dependencies=writers,
        summary="Record or replace a device's warranty",
        responses=_answers(s404="the site has no installation record"),
    )
    async def put_warranty(
        region: RegionPath, site_id: SiteIdPath, serial: SerialPath, body: WarrantyIn
    ) -> DeviceWarranty:
        return await run_in_threadpool(service.put_warranty, region, site_id, serial, body)

    return router
