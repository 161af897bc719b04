"""Your Packages: the list with the columns ISPs know, New Package (on a master package
whose type, billing, speeds, cap and pool it inherits), edit, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from provisioner import registry
from provisioner.auth import Principal
from provisioner.errors import ProvisionerError
from provisioner.read import masters, packages
from provisioner.schemas import PackageCreate, PackageUpdate
from provisioner.web.common import (
    AdminUser,
    Form,
    check_csrf,
    errors_of,
    flash,
    is_htmx,
    page,
    read,
    redirect,
    status_for,
    write,
)
from provisioner.web.forms import body, text_of

router = APIRouter(prefix="/ui/packages", dependencies=[Depends(check_csrf)])
FIELDS = ("master_package", "name", "customer_price", "operator_price", "visibility")
VISIBILITY = [("public", "public"), ("private", "private")]


def _list_page(
    request: Request, me: Principal, *, status: int = 200, message: str | None = None
) -> Response:
    rows = read(request, lambda s: packages.list_(s, me))
    extra = {"flashed": {"message": message, "ok": False}} if message else {}
    return page(request, "admin/packages.html", me, status=status, packages=rows, **extra)


@router.get("")
def list_packages(request: Request, me: AdminUser) -> Response:
    """Your Packages."""
    return _list_page(request, me)


def _masters(s: Session, me: Principal) -> dict[str, Any]:
    found = masters.list_(s, me)
    return {"masters": found, "by_name": {m.name: m for m in found}}


def _form_page(
    request: Request,
    me: Principal,
    form: dict[str, str],
    *,
    package_id: int | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    found = read(request, lambda s: _masters(s, me))
    master = found["by_name"].get(form.get("master_package", ""))
    if master is None and found["masters"] and package_id is None:
        master = found["masters"][0]
        form = {**form, "master_package": master.name}
    return page(
        request, "admin/package_form.html", me, status=status, form=form,
        errors=errors or {}, package_id=package_id, master=master, visibility=VISIBILITY,
        master_choices=[(m.name, m.name) for m in found["masters"]],
    )  # fmt: skip


@router.get("/new")
def new_package(request: Request, me: AdminUser) -> Response:
    return _form_page(request, me, {"visibility": "public"})


@router.get("/inherited")
def inherited(request: Request, me: AdminUser, master_package: str = "") -> Response:
    """The inherited spec of one master package (htmx swaps it in as the choice changes)."""
    found = read(request, lambda s: _masters(s, me))
    return page(request, "admin/_inherited.html", me, master=found["by_name"].get(master_package))


@router.post("/new")
def create_package(request: Request, me: AdminUser, form: Form) -> Response:
    if form.get("show"):  # without JavaScript: show the chosen master's spec, keep the rest
        return _form_page(request, me, form)
    try:
        data = body(PackageCreate, form, FIELDS)
        p, warnings = write(request, lambda s: registry.create_package(s, me.actor, data))
    except ProvisionerError as exc:
        return _form_page(request, me, form, errors=errors_of(exc, FIELDS), status=status_for(exc))
    flash(request, " ".join([f"Package {p.name!r} created.", *warnings]))
    return redirect(request, "/ui/packages")


@router.get("/{package_id}/edit")
def edit_package(request: Request, me: AdminUser, package_id: int) -> Response:
    p = read(request, lambda s: packages.get(s, me, f"id:{package_id}"))
    return _form_page(request, me, text_of(p, FIELDS), package_id=package_id)


@router.post("/{package_id}/edit")
def update_package(request: Request, me: AdminUser, package_id: int, form: Form) -> Response:
    ref = f"id:{package_id}"
    if form.get("show"):
        return _form_page(request, me, form, package_id=package_id)
    try:
        current = read(request, lambda s: text_of(packages.get(s, me, ref), FIELDS))
        data = body(PackageUpdate, form, FIELDS, current=current)
        p, warnings = write(request, lambda s: registry.update_package(s, me.actor, ref, data))
    except ProvisionerError as exc:
        return _form_page(
            request, me, form, package_id=package_id, errors=errors_of(exc, FIELDS),
            status=status_for(exc),
        )  # fmt: skip
    flash(request, " ".join([f"Package {p.name!r} saved.", *warnings]))
    return redirect(request, "/ui/packages")


@router.post("/{package_id}/delete")
def delete_package(request: Request, me: AdminUser, package_id: int) -> Response:
    """Delete a package; one that customers use is refused, with who uses it."""
    ref = f"id:{package_id}"
    try:
        name = read(request, lambda s: packages.get(s, me, ref).name)
        write(request, lambda s: registry.delete_package(s, me.actor, ref))
    except ProvisionerError as exc:
        if is_htmx(request):
            return page(
                request, "_flash.html", me, status=status_for(exc), message=str(exc), ok=False
            )
        return _list_page(request, me, status=status_for(exc), message=str(exc))
    if is_htmx(request):
        return page(
            request, "admin/_deleted.html", me, message=f"Package {name!r} deleted.", ok=True,
            row=f"package-{package_id}",
        )  # fmt: skip
    flash(request, f"Package {name!r} deleted.")
    return redirect(request, "/ui/packages")
