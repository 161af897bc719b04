"""Master packages (the technical spec): list, create, edit, delete. Before a change is
saved, Preview shows what it will do: the routers that sync and the online customers who
get the new speed (``read.masters.preview`` runs the real write and rolls it back)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from provisioner import registry
from provisioner.auth import Principal
from provisioner.errors import ProvisionerError
from provisioner.http_threads import Route
from provisioner.read import masters
from provisioner.read.models import MasterOut
from provisioner.schemas import MASTER_FIELDS, MasterPackageCreate, MasterPackageUpdate
from provisioner.web.common import (
    AdminUser,
    Form,
    check_csrf,
    ctx_of,
    errors_of,
    flash,
    is_htmx,
    page,
    read,
    redirect,
    size_text,
    status_for,
    write,
)
from provisioner.web.forms import body
from provisioner.web.lists import PAGE_SIZE, csv_response, filters_of, number_of, paging

router = APIRouter(route_class=Route, prefix="/ui/masters", dependencies=[Depends(check_csrf)])
FIELDS = tuple(MASTER_FIELDS)
TYPES = [(t, t) for t in ("pppoe", "hotspot", "static", "other")]
BILLING = [("monthly", "monthly"), ("daily", "daily (prepaid for N days)")]


def _text(m: MasterOut) -> dict[str, str]:
    """A master package as its form shows it (a cap as 500G, not bytes)."""
    data: dict[str, Any] = m.model_dump()
    data["volume_cap"] = size_text(m.volume_cap)
    return {f: "" if data.get(f) is None else str(data[f]) for f in FIELDS}


def _form_page(
    request: Request,
    me: Principal,
    form: dict[str, str],
    *,
    master_id: int | None = None,
    errors: dict[str, str] | None = None,
    preview: Any = None,
    status: int = 200,
) -> Response:
    return page(
        request, "admin/master_form.html", me, status=status, form=form, errors=errors or {},
        master_id=master_id, preview=preview, types=TYPES, billing=BILLING,
    )  # fmt: skip


COLUMNS = ["name", "type", "billing", "down", "up", "rate limit", "volume cap", "pool",
           "pool ranges", "profile", "sessions"]  # fmt: skip


@router.get("")
def list_masters(request: Request, me: AdminUser) -> Response:
    """The master packages by name, searched by name, paged."""
    filters = filters_of(request, ("q",))
    number = number_of(request)
    found = read(
        request,
        lambda s: masters.page(
            s, me, q=filters["q"] or None, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
        ),
    )
    return page(
        request, "admin/masters.html", me, masters=found.items, filters=filters,
        **paging("/ui/masters", filters, number, found.total),
    )  # fmt: skip


@router.get(".csv")
def masters_csv(request: Request, me: AdminUser) -> Response:
    filters = filters_of(request, ("q",))
    rows = read(request, lambda s: masters.page(s, me, q=filters["q"] or None, limit=None).items)
    return csv_response(
        "master-packages.csv", COLUMNS,
        ([m.name, m.customer_type, m.billing, m.rate_down, m.rate_up, m.rate_limit,
          size_text(m.volume_cap), m.pool_name or "", m.pool_ranges or "", m.profile_name,
          m.shared_users] for m in rows),
    )  # fmt: skip


@router.get("/new")
def new_master(request: Request, me: AdminUser) -> Response:
    form = {
        "customer_type": "pppoe",
        "billing": "monthly",
        "duration_days": "30",
        "shared_users": "1",
    }
    return _form_page(request, me, form)


@router.post("/new")
def create_master(request: Request, me: AdminUser, form: Form) -> Response:
    try:
        data = body(MasterPackageCreate, form, FIELDS)
        m = write(request, lambda s: registry.create_master_package(s, me.actor, data))
    except ProvisionerError as exc:
        return _form_page(request, me, form, errors=errors_of(exc, FIELDS), status=status_for(exc))
    flash(request, f"Master package {m.name!r} created.")
    return redirect(request, "/ui/masters")


@router.get("/{master_id}/edit")
def edit_master(request: Request, me: AdminUser, master_id: int) -> Response:
    m = read(request, lambda s: masters.get(s, me, f"id:{master_id}"))
    return _form_page(request, me, _text(m), master_id=master_id)


def _changes(
    request: Request, me: Principal, master_id: int, form: dict[str, str]
) -> dict[str, Any]:
    current = read(request, lambda s: _text(masters.get(s, me, f"id:{master_id}")))
    return body(MasterPackageUpdate, form, FIELDS, current=current)


@router.post("/{master_id}/preview")
def preview_master(request: Request, me: AdminUser, master_id: int, form: Form) -> Response:
    """What saving the form would do, without saving it."""
    try:
        data = _changes(request, me, master_id, form)
        found = masters.preview(ctx_of(request).factory, me, f"id:{master_id}", data)
    except ProvisionerError as exc:
        if is_htmx(request):
            return page(
                request, "admin/_master_preview.html", me, error=str(exc), status=status_for(exc)
            )
        return _form_page(
            request, me, form, master_id=master_id, errors=errors_of(exc, FIELDS),
            status=status_for(exc),
        )  # fmt: skip
    if is_htmx(request):
        return page(request, "admin/_master_preview.html", me, preview=found)
    return _form_page(request, me, form, master_id=master_id, preview=found)


@router.post("/{master_id}/edit")
def update_master(request: Request, me: AdminUser, master_id: int, form: Form) -> Response:
    ref = f"id:{master_id}"
    try:
        data = _changes(request, me, master_id, form)
        m = write(request, lambda s: registry.update_master_package(s, me.actor, ref, data))
    except ProvisionerError as exc:
        return _form_page(
            request, me, form, master_id=master_id, errors=errors_of(exc, FIELDS),
            status=status_for(exc),
        )  # fmt: skip
    flash(request, f"Master package {m.name!r} saved." if data else "Nothing was changed.")
    return redirect(request, "/ui/masters")


@router.post("/{master_id}/delete")
def delete_master(request: Request, me: AdminUser, master_id: int) -> Response:
    ref = f"id:{master_id}"
    try:
        name = read(request, lambda s: masters.get(s, me, ref).name)
        write(request, lambda s: registry.delete_master_package(s, me.actor, ref))
    except ProvisionerError as exc:
        flash(request, str(exc), ok=False)
        return redirect(request, "/ui/masters")
    flash(request, f"Master package {name!r} deleted.")
    return redirect(request, "/ui/masters")
