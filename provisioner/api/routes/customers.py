"""Customers. Admin: all of them. Reseller: its own (others' answer 404). Customer: only
``GET /customers/me``; everything else here is 403 for a customer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse

from provisioner import access, bulk, registry
from provisioner.api.deps import CustomerDep, PagingDep, PrincipalDep, SessionDep, StaffDep
from provisioner.http_threads import Route, slow
from provisioner.read import customers
from provisioner.read.models import CustomerOut, ImportOut, Page, UsageOut
from provisioner.registry.customers import reseller_write
from provisioner.schemas import CustomerCreate, CustomerStatusIn, CustomerUpdate, Ref

router = APIRouter(route_class=Route, prefix="/customers", tags=["customers"])


MAX_CSV = 16 * 1024 * 1024  # characters: 100,000 rows of ~160


@router.get("")
def list_customers(
    session: SessionDep,
    staff: StaffDep,
    paging: PagingDep,
    q: Annotated[Ref | None, Query(description="usernames that contain this (any case)")] = None,
    status: Annotated[CustomerStatusIn | None, Query()] = None,
    reseller: Annotated[Ref | None, Query(description="one reseller's (admins only)")] = None,
    package: Annotated[Ref | None, Query(description="on this package")] = None,
    router: Annotated[Ref | None, Query(description="on this router")] = None,
    expiring_within_days: Annotated[
        int | None, Query(ge=0, le=customers.MAX_DAYS, description="paid period ends within")
    ] = None,
) -> Page[CustomerOut]:
    """Customers by username, a page at a time, filtered. Admin: all of them. Reseller:
    its own."""
    return customers.search(
        session,
        staff,
        q=q,
        status=status,
        reseller=reseller,
        package=package,
        router=router,
        expiring_within_days=expiring_within_days,
        limit=paging.limit,
        offset=paging.offset,
    )


@router.post("", status_code=201)
def create_customer(body: CustomerCreate, session: SessionDep, staff: StaffDep) -> CustomerOut:
    """Add a customer. A reseller's customer is its own and may only get a package
    assigned to that reseller."""
    data = reseller_write(session, staff, body.given())
    return customers.view(registry.create_customer(session, staff.actor, data))


@router.post("/import", responses={422: {"description": "refused rows; nothing stored"}})
@slow
def import_customers(
    body: Annotated[str, Body(media_type="text/csv", max_length=MAX_CSV)],
    session: SessionDep,
    staff: StaffDep,
    response: Response,
    dry_run: Annotated[bool, Query(description="check every row, store nothing")] = False,
) -> ImportOut:
    """Add customers from a CSV file (``text/csv``, a header line first; columns as the
    body of ``POST /customers``), all or nothing. Every row is checked as that endpoint
    checks one; every refusal is listed with its line and column. A dry run answers 200
    with them; an import with any refused row stores nothing and answers 422 with them.
    A reseller's rows are its own customers."""
    result = bulk.import_csv(session, staff, body, dry_run=dry_run)
    if result.errors and not dry_run:
        n = len(result.errors)
        reason = f"{n} refusal{'s' if n != 1 else ''} in {result.rows} rows; nothing stored"
        return JSONResponse(  # type: ignore[return-value]
            {"error": reason, "field": None, "reason": reason, **result.model_dump()},
            status_code=422,
        )
    if not dry_run:
        response.status_code = 201
    return result


# Declared before "/{username}" so that "me" is not taken for a username.
@router.get("/me")
def get_me(session: SessionDep, customer: CustomerDep) -> CustomerOut:
    """The calling customer's own record (customer tokens only)."""
    return customers.me(session, customer)


@router.get("/{username}")
def get_customer(username: Ref, session: SessionDep, staff: StaffDep) -> CustomerOut:
    return customers.get(session, staff, username)


@router.get("/{username}/usage")
def get_usage(username: Ref, session: SessionDep, principal: PrincipalDep) -> UsageOut:
    """Usage in the current billing cycle (fair usage): bytes, threshold, throttled."""
    return customers.usage(session, principal, username)


@router.patch("/{username}")
def update_customer(
    username: Ref, body: CustomerUpdate, session: SessionDep, staff: StaffDep
) -> CustomerOut:
    c = access.customer(session, staff, username)
    data = reseller_write(session, staff, body.given(), current=c)
    return customers.view(registry.update_customer(session, staff.actor, c.username, data))


@router.delete("/{username}", status_code=204)
def delete_customer(username: Ref, session: SessionDep, staff: StaffDep) -> None:
    c = access.customer(session, staff, username)
    registry.delete_customer(session, staff.actor, c.username)
