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
from provisioner.http_threads import Route
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
from provisioner.web.lists import PAGE_SIZE, csv_response, filters_of, number_of, paging

router = APIRouter(route_class=Route, prefix="/ui/packages", dependencies=[Depends(check_csrf)])
FIELDS = ("master_package", "name", "customer_price", "operator_price", "visibility")
VISIBILITY = [("public", "public"), ("private", "private")]


LIST_FILTERS = ("q", "customer_type", "billing", "visibility", "master")
TYPES = [(t, t) for t in ("pppoe", "hotspot", "static", "other")]
BILLINGS = [("monthly", "monthly"), ("daily", "daily")]
COLUMNS = ["Package Name", "Master Package", "Customer's Price", "Operator's Price", "Type",
           "Billing", "Visibility"]  # fmt: skip


def _found(s: Session, me: Principal, filters: dict[str, str], **kw: Any) -> Any:
    return packages.page(
        s, me, q=filters["q"] or None, customer_type=filters["customer_type"] or None,
        billing=filters["billing"] or None, visibility=filters["visibility"] or None,
        master=filters["master"] or None, **kw,
    )  # fmt: skip


def _list_page(
    request: Request, me: Principal, *, status: int = 200, message: str | None = None
) -> Response:
    filters = filters_of(request, LIST_FILTERS)
    number = number_of(request)

    def load(s: Session) -> dict[str, Any]:
        found = _found(s, me, filters, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        return {"found": found, "master_names": [m.name for m in masters.list_(s, me)]}

    try:
        loaded = read(request, load)
    except ProvisionerError as exc:  # a filter that is not one of its choices
        filters = dict.fromkeys(LIST_FILTERS, "")
        loaded, message, status = read(request, load), str(exc), status_for(exc)
    extra = {"flashed": {"message": message, "ok": False}} if message else {}
    return page(
        request, "admin/packages.html", me, status=status, packages=loaded["found"].items,
        filters=filters, types=TYPES, billings=BILLINGS, visibilities=VISIBILITY,
        master_names=loaded["master_names"],
        **paging("/ui/packages", filters, number, loaded["found"].total), **extra,
    )  # fmt: skip


@router.get("")
def list_packages(request: Request, me: AdminUser) -> Response:
    """Your Packages: searched by name, filtered by type, billing, visibility and master
    package, 25 a page."""
    return _list_page(request, me)


@router.get(".csv")
def packages_csv(request: Request, me: AdminUser) -> Response:
    """What Your Packages shows with these filters, every page of it."""
    filters = filters_of(request, LIST_FILTERS)
    rows = read(request, lambda s: _found(s, me, filters, limit=None).items)
    return csv_response(
        "packages.csv", COLUMNS,
        ([p.name, p.master_package, p.customer_price, p.operator_price, p.type,
          p.billing + (f" ({p.duration_days} days)" if p.duration_days else ""), p.visibility]
         for p in rows),
    )  # fmt: skip


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
    # No master is chosen for the admin: a package on the wrong spec is a wrong speed.
    master = found["by_name"].get(form.get("master_package", ""))
    return page(
        request, "admin/package_form.html", me, status=status, form=form,
        errors=errors or {}, package_id=package_id, master=master, visibility=VISIBILITY,
        master_choices=[("", "Choose a master package…")]
        + [(m.name, m.name) for m in found["masters"]],
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
