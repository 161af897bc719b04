"""Packages (name, prices, visibility). Reading is scoped by role (``access``); writing
is admin only. Names may contain ``/`` (e.g. "Home 10M/5M"): send it %2F-encoded."""

from __future__ import annotations

from fastapi import APIRouter

from provisioner import registry
from provisioner.api.deps import AdminDep, PagingDep, PrincipalDep, Search, SessionDep
from provisioner.http_threads import Route
from provisioner.read import packages
from provisioner.read.models import PackageOut, PackageWritten, Page, PublicPackageOut
from provisioner.schemas import PackageCreate, PackageUpdate, Ref

router = APIRouter(route_class=Route, prefix="/packages", tags=["packages"])


@router.get("")
def list_packages(
    session: SessionDep, principal: PrincipalDep, paging: PagingDep, q: Search = None
) -> Page[PackageOut] | Page[PublicPackageOut]:
    """Admin: all packages. Reseller: its assigned packages at its price. Customer: public
    packages, without the operator price. By name, a page at a time; ``q``: names that
    contain it."""
    return packages.page(session, principal, q=q, limit=paging.limit, offset=paging.offset)


@router.post("", status_code=201)
def create_package(body: PackageCreate, session: SessionDep, admin: AdminDep) -> PackageWritten:
    p, warnings = registry.create_package(session, admin.actor, body.given())
    return PackageWritten(package=packages.view(p), warnings=warnings)


@router.get("/{name:path}")
def get_package(
    name: Ref, session: SessionDep, principal: PrincipalDep
) -> PackageOut | PublicPackageOut:
    """One package, under the listing's rules; one outside the caller's view is 404."""
    return packages.get(session, principal, name)


@router.patch("/{name:path}")
def update_package(
    name: Ref, body: PackageUpdate, session: SessionDep, admin: AdminDep
) -> PackageWritten:
    p, warnings = registry.update_package(session, admin.actor, name, body.given())
    return PackageWritten(package=packages.view(p), warnings=warnings)


@router.delete("/{name:path}", status_code=204)
def delete_package(name: Ref, session: SessionDep, admin: AdminDep) -> None:
    registry.delete_package(session, admin.actor, name)
