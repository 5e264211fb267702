"""Customers REST routes, relative to the portal's regional prefix ``/api/v1/{region}``:
every record is read and written in the region of the URL.

Every route takes its caller's :class:`~cloud.scope.Access` from the portal's one
authorisation dependency (``access(route_key)``; the key is the route's ``operationId``;
401/403 are its) and passes the scope to the service, which filters accounts by it in
SQL (a customer: its own account only). Which account owns a site is the registry's: the
portal passes ``site_in_scope(scope, site_id)`` (the registry's answer, filtered by the
same scope), asked before every site route. What is outside the scope answers 404. The
service's refusals propagate: the portal's handlers answer them (404, 409, 422).
"""

# No ``from __future__ import annotations``: the routes' ``Annotated`` dependencies are
# local to ``create_router`` and FastAPI resolves string annotations in the module's
# globals only.

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
from cloud.scope import Access, Scope
from contracts.topics import Region

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


def _region(who: Access) -> Region:
    """The URL's region: the portal narrows every scope to it."""
    assert who.scope.region is not None, "the portal narrows every scope to the URL's region"
    return who.scope.region


def create_router(
    service: CustomersService,
    *,
    access: Callable[[str], Callable[..., Any]],
    site_in_scope: Callable[[Scope, int], bool] | None = None,
) -> APIRouter:
    """Routes under ``/accounts`` and ``/sites/{site_id}/…``; ``access(key)`` authorises;
    ``site_in_scope(scope, site_id)`` (blocking; run in a thread) says whether the site
    exists within the scope. Without it no account's scope reaches a site (the router
    cannot tell which are its), and a region's every site of the region."""
    router = APIRouter(tags=["customers"])

    async def reach_site(who: Access, site_id: int) -> Region:
        """The URL's region, once the site is in the caller's reach; else 404."""
        region = _region(who)
        if site_in_scope is None:
            reachable = not who.scope.by_account
        else:
            reachable = await run_in_threadpool(site_in_scope, who.scope, site_id)
        if not reachable:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"site {site_id} does not exist in {region.value}"
            )
        return region

    # -- accounts -----------------------------------------------------------------------
    @router.get(
        "/accounts",
        response_model=list[Account],
        operation_id="accounts.list",
        summary="List the region's customer accounts",
        responses=_answers(),
    )
    async def list_accounts(
        who: Annotated[Access, Depends(access("accounts.list"))],
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[Account]:
        return await run_in_threadpool(
            service.list_accounts, limit=limit, offset=offset, scope=who.scope
        )

    @router.post(
        "/accounts",
        response_model=Account,
        status_code=status.HTTP_201_CREATED,
        operation_id="accounts.create",
        summary="Create a customer account at home in this region",
        responses=_answers(s409="the user already has an account"),
    )
    async def add_account(
        who: Annotated[Access, Depends(access("accounts.create"))], body: AccountIn
    ) -> Account:
        return await run_in_threadpool(service.add_account, _region(who), body)

    @router.get(
        "/accounts/{account_id}",
        response_model=Account,
        operation_id="accounts.get",
        summary="One account",
        responses=_answers(s404="no such account in this region"),
    )
    async def get_account(
        who: Annotated[Access, Depends(access("accounts.get"))], account_id: AccountIdPath
    ) -> Account:
        account = await run_in_threadpool(service.get_account, account_id, scope=who.scope)
        if account is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"account {account_id} not found")
        return account

    @router.patch(
        "/accounts/{account_id}",
        response_model=Account,
        operation_id="accounts.update",
        summary="Change an account's name, email, plan, user or status",
        responses=_answers(
            s404="no such account in this region",
            s409="the account is closed, or the user already has another account",
        ),
    )
    async def update_account(
        who: Annotated[Access, Depends(access("accounts.update"))],
        account_id: AccountIdPath,
        body: AccountPatch,
    ) -> Account:
        return await run_in_threadpool(service.update_account, account_id, body, scope=who.scope)

    # -- contacts -----------------------------------------------------------------------
    @router.get(
        "/accounts/{account_id}/contacts",
        response_model=list[Contact],
        operation_id="contacts.list",
        summary="An account's contacts",
        responses=_answers(s404="no such account in this region"),
    )
    async def list_contacts(
        who: Annotated[Access, Depends(access("contacts.list"))], account_id: AccountIdPath
    ) -> list[Contact]:
        return await run_in_threadpool(
            service.list_contacts, _region(who), account_id, scope=who.scope
        )

    @router.post(
        "/accounts/{account_id}/contacts",
        response_model=Contact,
        status_code=status.HTTP_201_CREATED,
        operation_id="contacts.create",
        summary="Add a contact",
        responses=_answers(
            s404="no such account in this region",
            s409="a second primary contact, or the account's contacts are full",
        ),
    )
    async def add_contact(
        who: Annotated[Access, Depends(access("contacts.create"))],
        account_id: AccountIdPath,
        body: ContactIn,
    ) -> Contact:
        return await run_in_threadpool(
            service.add_contact, _region(who), account_id, body, scope=who.scope
        )

    @router.delete(
        "/accounts/{account_id}/contacts/{contact_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        operation_id="contacts.delete",
        summary="Remove a contact",
        responses=_answers(s404="no such account in this region, or no such contact"),
    )
    async def remove_contact(
        who: Annotated[Access, Depends(access("contacts.delete"))],
        account_id: AccountIdPath,
        contact_id: ContactIdPath,
    ) -> Response:
        await run_in_threadpool(
            service.remove_contact, _region(who), account_id, contact_id, scope=who.scope
        )
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    # -- installation -------------------------------------------------------------------
    @router.get(
        "/sites/{site_id}/installation",
        response_model=Installation,
        operation_id="installations.get",
        summary="A site's installation record",
        responses=_answers(s404="the site has no installation record"),
    )
    async def get_installation(
        who: Annotated[Access, Depends(access("installations.get"))], site_id: SiteIdPath
    ) -> Installation:
        region = await reach_site(who, site_id)
        found = await run_in_threadpool(service.get_installation, region, site_id)
        if found is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"site {site_id} has no installation record"
            )
        return found

    @router.put(
        "/sites/{site_id}/installation",
        response_model=Installation,
        operation_id="installations.put",
        summary="Record or replace a site's installation record",
        description="201 when recorded, 200 when replaced. The billing meter changes only "
        "through a meter replacement. `grid_meter` (the grid-connection meter's serial, "
        "another meter than `billing_meter`) is needed by au and es sites to bill energy "
        "consumed on site; us sites may leave it out (null).",
        responses=_answers(
            s200="replaced",
            s201="recorded",
            s404="no such site in this region",
            s409="it would change the billing meter (record a meter replacement)",
            s422="a field out of its bounds, or a record its rules refuse (a tariff zone not "
            "the region's, a warranty ending before the installation, grid_meter equal to "
            "billing_meter): detail names the field",
        ),
    )
    async def put_installation(
        who: Annotated[Access, Depends(access("installations.put"))],
        site_id: SiteIdPath,
        body: InstallationIn,
        response: Response,
    ) -> Installation:
        region = await reach_site(who, site_id)
        record, created = await run_in_threadpool(service.put_installation, region, site_id, body)
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return record

    # -- meter replacements -------------------------------------------------------------
    @router.get(
        "/sites/{site_id}/meter-replacements",
        response_model=list[MeterReplacement],
        operation_id="meter_replacements.list",
        summary="A site's billing-meter replacements, in time order",
        responses=_answers(s404="the site has no installation record"),
    )
    async def list_meter_replacements(
        who: Annotated[Access, Depends(access("meter_replacements.list"))],
        site_id: SiteIdPath,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[MeterReplacement]:
        region = await reach_site(who, site_id)
        return await run_in_threadpool(
            service.list_meter_replacements, region, site_id, limit=limit, offset=offset
        )

    @router.post(
        "/sites/{site_id}/meter-replacements",
        response_model=MeterReplacement,
        status_code=status.HTTP_201_CREATED,
        operation_id="meter_replacements.create",
        summary="Record a billing-meter replacement with both registers",
        responses=_answers(
            s404="the site has no installation record",
            s409="the old serial is not the site's billing meter, or the new one is its grid meter",
        ),
    )
    async def record_meter_replacement(
        who: Annotated[Access, Depends(access("meter_replacements.create"))],
        site_id: SiteIdPath,
        body: MeterReplacementIn,
    ) -> MeterReplacement:
        region = await reach_site(who, site_id)
        return await run_in_threadpool(service.record_meter_replacement, region, site_id, body)

    # -- device warranties --------------------------------------------------------------
    @router.get(
        "/sites/{site_id}/warranties",
        response_model=list[DeviceWarranty],
        operation_id="warranties.list",
        summary="The warranties of a site's devices, by serial",
        responses=_answers(s404="the site has no installation record"),
    )
    async def list_warranties(
        who: Annotated[Access, Depends(access("warranties.list"))],
        site_id: SiteIdPath,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[DeviceWarranty]:
        region = await reach_site(who, site_id)
        return await run_in_threadpool(
            service.list_warranties, region, site_id, limit=limit, offset=offset
        )

    @router.put(
        "/sites/{site_id}/warranties/{serial}",
        response_model=DeviceWarranty,
        operation_id="warranties.put",
        summary="Record or replace a device's warranty",
        responses=_answers(s404="the site has no installation record"),
    )
    async def put_warranty(
        who: Annotated[Access, Depends(access("warranties.put"))],
        site_id: SiteIdPath,
        serial: SerialPath,
        body: WarrantyIn,
    ) -> DeviceWarranty:
        region = await reach_site(who, site_id)
        return await run_in_threadpool(service.put_warranty, region, site_id, serial, body)

    return router
