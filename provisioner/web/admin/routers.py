"""Routers: last sync and status, the sync history, a dry run that shows the plan as the
CLI prints it (in colour), Sync, and the bootstrap plan (the router's RADIUS side); add,
edit and remove one (with a reason, kept in the audit log).

Credentials are write-only, as in the API and the CLI: the form never shows the API
password or the RADIUS secret back, an empty field leaves them as they are, and the
registry stores them encrypted (``registry.create_router``, as ``router add`` does).

Dry runs and syncs talk to routers for seconds: they run through ``sync`` in short
transactions of their own, as the API's do, never inside a request's transaction."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from provisioner import registry, sync
from provisioner.auth import Principal
from provisioner.errors import ProvisionerError, ValidationError
from provisioner.http_threads import Route, slow
from provisioner.read import plans, routers
from provisioner.schemas import RouterCreate, RouterUpdate
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
    status_for,
    write,
)
from provisioner.web.forms import body, text_of
from provisioner.web.lists import PAGE_SIZE, csv_response, filters_of, number_of, paging
from provisioner.web.plans import shown

router = APIRouter(route_class=Route, prefix="/ui/routers", dependencies=[Depends(check_csrf)])
TEXT_FIELDS = ("name", "host", "api_port", "username", "customer_types", "mode", "coa_port")
SECRETS = ("password", "radius_secret")
FLAGS = ("api_tls", "enabled")
FIELDS = TEXT_FIELDS + SECRETS + FLAGS
MODES = [
    ("radius", "radius (customers in the RADIUS tables)"),
    ("local", "local (secrets on the router)"),
]
COLUMNS = ["name", "host", "api port", "mode", "serves", "last sync (UTC)", "status"]


@router.get("")
def list_routers(request: Request, me: AdminUser) -> Response:
    """The routers by name, searched by name, paged."""
    filters = filters_of(request, ("q",))
    number = number_of(request)
    found = read(
        request,
        lambda s: routers.page(
            s, me, q=filters["q"] or None, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
        ),
    )
    return page(
        request, "admin/routers.html", me, routers=found.items, filters=filters,
        **paging("/ui/routers", filters, number, found.total),
    )  # fmt: skip


@router.get(".csv")
def routers_csv(request: Request, me: AdminUser) -> Response:
    filters = filters_of(request, ("q",))
    rows = read(request, lambda s: routers.page(s, me, q=filters["q"] or None, limit=None).items)
    return csv_response(
        "routers.csv", COLUMNS,
        ([r.name, r.host, r.api_port, r.mode, r.customer_types, r.last_sync or "", r.last_status]
         for r in rows),
    )  # fmt: skip


def _form_page(
    request: Request,
    me: Principal,
    form: dict[str, str],
    *,
    router_id: int | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return page(
        request, "admin/router_form.html", me, status=status, form=form, errors=errors or {},
        router_id=router_id, modes=MODES,
    )  # fmt: skip


def _data(form: dict[str, str], current: dict[str, str] | None) -> dict[str, Any]:
    """The form as a registry write: text fields as the API reads them (only changes when
    editing), the checkboxes, and a credential only when one was typed."""
    model = RouterCreate if current is None else RouterUpdate
    typed = {k: v for k, v in form.items() if k in TEXT_FIELDS}
    data = body(RouterUpdate, typed, TEXT_FIELDS, current=current)
    for f in FLAGS:
        on = form.get(f) == "on"
        if current is None or (current.get(f) == "True") != on:
            data[f] = on
    for f in SECRETS:
        if form.get(f):
            data[f] = form[f]
    if model is RouterCreate:
        for f in ("name", "host", "username", "radius_secret"):
            if not data.get(f):
                raise ValidationError("must not be empty", field=f)
    return data


@router.get("/new")
def new_router(request: Request, me: AdminUser) -> Response:
    form = {"api_port": "8728", "coa_port": "3799", "mode": "radius",
            "customer_types": "pppoe,hotspot,static", "enabled": "on"}  # fmt: skip
    return _form_page(request, me, form)


@router.post("/new")
def create_router(request: Request, me: AdminUser, form: Form) -> Response:
    try:
        data = _data(form, None)
        r = write(request, lambda s: registry.create_router(s, me.actor, data))
    except ProvisionerError as exc:
        form = {k: v for k, v in form.items() if k not in SECRETS}  # never sent back
        return _form_page(request, me, form, errors=errors_of(exc, FIELDS), status=status_for(exc))
    flash(request, f"Router {r.name!r} added; it is synced shortly.")
    return redirect(request, f"/ui/routers/{r.id}")


def _current(s: Session, me: Principal, router_id: int) -> dict[str, str]:
    found = text_of(routers.get(s, me, f"id:{router_id}"), TEXT_FIELDS + FLAGS)
    return {**found, **{f: "on" if found[f] == "True" else "" for f in FLAGS},
            **{f"{f}_was": found[f] for f in FLAGS}}  # fmt: skip


@router.get("/{router_id}/edit")
def edit_router(request: Request, me: AdminUser, router_id: int) -> Response:
    return _form_page(request, me, read(request, lambda s: _current(s, me, router_id)),
                      router_id=router_id)  # fmt: skip


@router.post("/{router_id}/edit")
def update_router(request: Request, me: AdminUser, router_id: int, form: Form) -> Response:
    ref = f"id:{router_id}"

    def action(s: Session) -> str:
        was = _current(s, me, router_id)
        current = {**was, **{f: was[f"{f}_was"] for f in FLAGS}}
        data = _data(form, current)
        r = registry.update_router(s, me.actor, ref, data) if data else None
        return f"Router {r.name!r} saved." if r else "Nothing was changed."

    try:
        message = write(request, action)
    except ProvisionerError as exc:
        form = {k: v for k, v in form.items() if k not in SECRETS}
        return _form_page(request, me, form, router_id=router_id,
                          errors=errors_of(exc, FIELDS), status=status_for(exc))  # fmt: skip
    flash(request, message)
    return redirect(request, f"/ui/routers/{router_id}")


@router.post("/{router_id}/remove")
def remove_router(request: Request, me: AdminUser, router_id: int, form: Form) -> Response:
    """Remove a router: a reason is asked for, and kept in the audit log."""
    ref = f"id:{router_id}"
    reason = form.get("reason", "")
    try:
        if not reason:
            raise ValidationError("say why the router is removed", field="reason")
        name = read(request, lambda s: routers.get(s, me, ref).name)
        write(request, lambda s: registry.delete_router(s, me.actor, ref, reason))
    except ProvisionerError as exc:
        return _detail(request, me, router_id, status=status_for(exc), remove_form=form,
                       remove_errors=errors_of(exc, ("reason",)))  # fmt: skip
    flash(request, f"Router {name!r} removed.")
    return redirect(request, "/ui/routers")


def _detail(
    request: Request, me: Principal, router_id: int, *, status: int = 200, **context: Any
) -> Response:
    ref = f"id:{router_id}"

    def load(s: Session) -> dict[str, Any]:
        status = {r.id: r for r in routers.list_(s, me)}
        r = routers.get(s, me, ref)
        return {"router": status.get(r.id, r), "runs": routers.runs(s, me, ref, limit=10).items}

    return page(request, "admin/router.html", me, status=status, **read(request, load), **context)


@router.get("/{router_id}")
def show_router(request: Request, me: AdminUser, router_id: int) -> Response:
    return _detail(request, me, router_id)


def _plan(request: Request, me: Principal, router_id: int, *, bootstrap: bool) -> Response:
    ctx = ctx_of(request)
    ids = sync.router_ids(ctx.factory, [f"id:{router_id}"])
    if bootstrap:
        found = [sync.sync_router(ctx.factory, ctx.settings, ids[0], dry_run=True, bootstrap=True)]
    else:
        found = sync.sync_many(ctx.factory, ctx.settings, ids, dry_run=True)
    out, text = shown([r.plan for r in found])
    title = "Bootstrap plan (the router's RADIUS side)" if bootstrap else "Dry run"
    if is_htmx(request):
        return page(request, "admin/_plan.html", me, plan=out, plan_html=text, plan_title=title)
    return _detail(request, me, router_id, plan=out, plan_html=text, plan_title=title)


@router.get("/{router_id}/plan")
@slow
def dry_run(request: Request, me: AdminUser, router_id: int) -> Response:
    """What a sync would change on the router; nothing is written."""
    return _plan(request, me, router_id, bootstrap=False)


@router.get("/{router_id}/bootstrap")
@slow
def bootstrap_plan(request: Request, me: AdminUser, router_id: int) -> Response:
    """What ``provisioner bootstrap`` would configure (/radius, /radius/incoming,
    /ppp/aaa); applying it stays with the CLI."""
    return _plan(request, me, router_id, bootstrap=True)


@router.post("/{router_id}/sync")
@slow
def sync_router(request: Request, me: AdminUser, router_id: int) -> Response:
    """Apply the registry to the router now (the run is recorded)."""
    ctx = ctx_of(request)
    ids = sync.router_ids(ctx.factory, [f"id:{router_id}"])
    results = plans.sync_results(sync.sync_many(ctx.factory, ctx.settings, ids, trigger="web"))
    r = results.results[0]
    text = f"Sync of {r.router}: {r.status}, {r.applied} of {r.planned} changes applied"
    flash(request, text + (f" ({r.error})" if r.error else "."), ok=r.status == "ok")
    return redirect(request, f"/ui/routers/{router_id}")
