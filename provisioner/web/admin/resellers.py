"""Resellers: balance and top-up, the packages each may sell at its own price
(assign, unassign), its ledger."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from provisioner import ledger, registry
from provisioner.auth import Principal
from provisioner.errors import ProvisionerError
from provisioner.http_threads import Route
from provisioner.read import balances, packages, resellers
from provisioner.schemas import ResellerCreate, ResellerUpdate
from provisioner.web.common import (
    AdminUser,
    Form,
    check_csrf,
    errors_of,
    flash,
    page,
    read,
    redirect,
    status_for,
    write,
)
from provisioner.web.forms import body, text_of
from provisioner.web.lists import PAGE_SIZE, csv_response, filters_of, number_of, paging

router = APIRouter(route_class=Route, prefix="/ui/resellers", dependencies=[Depends(check_csrf)])
FIELDS = ("name", "contact")
TOPUP_FIELDS = ("amount",)
ASSIGN_FIELDS = ("package", "price")


def _account(reseller_id: int) -> str:
    return ledger.account_of("reseller", reseller_id)


@router.get("")
def list_resellers(request: Request, me: AdminUser) -> Response:
    """The resellers by name, searched by name, paged, each with its balance."""
    filters = filters_of(request, ("q",))
    number = number_of(request)

    def load(s: Session) -> dict[str, Any]:
        found = resellers.page(
            s, me, q=filters["q"] or None, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
        )
        return {
            "found": found,
            "resellers": found.items,
            "balances": {r.id: ledger.balance(s, _account(r.id)) for r in found.items},
        }

    found = read(request, load)
    total = found.pop("found").total
    return page(
        request, "admin/resellers.html", me, filters=filters, **found,
        **paging("/ui/resellers", filters, number, total),
    )  # fmt: skip


@router.get(".csv")
def resellers_csv(request: Request, me: AdminUser) -> Response:
    filters = filters_of(request, ("q",))
    rows = read(request, lambda s: resellers.page(s, me, q=filters["q"] or None, limit=None).items)
    return csv_response(
        "resellers.csv", ["name", "contact", "balance", "packages (its price)"],
        ([r.name, r.contact, r.balance,
          ", ".join(f"{a.package} ({a.effective_price})" for a in r.packages)] for r in rows),
    )  # fmt: skip


@router.get("/new")
def new_reseller(request: Request, me: AdminUser) -> Response:
    return page(request, "admin/reseller_new.html", me)


@router.post("/new")
def create_reseller(request: Request, me: AdminUser, form: Form) -> Response:
    try:
        data = body(ResellerCreate, form, FIELDS)
        r = write(request, lambda s: registry.create_reseller(s, me.actor, data))
    except ProvisionerError as exc:
        return page(
            request, "admin/reseller_new.html", me, form=form, errors=errors_of(exc, FIELDS),
            status=status_for(exc),
        )  # fmt: skip
    flash(request, f"Reseller {r.name!r} created.")
    return redirect(request, f"/ui/resellers/{r.id}")


def _detail(
    request: Request,
    me: Principal,
    reseller_id: int,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    ref = f"id:{reseller_id}"

    def load(s: Session) -> dict[str, Any]:
        r = resellers.get(s, me, ref)
        mine = {a.package for a in r.packages}
        return {
            "reseller": r,
            "account": balances.of_account(s, me, _account(reseller_id)),
            "sellable": [(p.name, p.name) for p in packages.list_(s, me) if p.name not in mine],
        }

    found = read(request, load)
    context.setdefault("form", text_of(found["reseller"], FIELDS))
    return page(request, "admin/reseller.html", me, status=status, **found, **context)


@router.get("/{reseller_id}")
def show_reseller(request: Request, me: AdminUser, reseller_id: int) -> Response:
    return _detail(request, me, reseller_id)


def _do(
    request: Request,
    me: Principal,
    reseller_id: int,
    action: Any,
    done: str,
    fields: tuple[str, ...],
    form: dict[str, str],
    key: str,
) -> Response:
    """Run one write of the reseller's page; on a refusal show the page again with the
    reason beside the form (``key``: which of its forms) and what was typed kept."""
    try:
        message = write(request, action)
    except ProvisionerError as exc:
        return _detail(
            request, me, reseller_id, status=status_for(exc),
            **{f"{key}_form": form, f"{key}_errors": errors_of(exc, fields)},
        )  # fmt: skip
    flash(request, message or done)
    return redirect(request, f"/ui/resellers/{reseller_id}")


@router.post("/{reseller_id}/edit")
def update_reseller(request: Request, me: AdminUser, reseller_id: int, form: Form) -> Response:
    ref = f"id:{reseller_id}"

    def action(s: Session) -> str:
        current = text_of(resellers.get(s, me, ref), FIELDS)
        registry.update_reseller(
            s, me.actor, ref, body(ResellerUpdate, form, FIELDS, current=current)
        )
        return "Reseller saved."

    try:
        message = write(request, action)
    except ProvisionerError as exc:
        return _detail(
            request, me, reseller_id, status=status_for(exc), form=form,
            errors=errors_of(exc, FIELDS),
        )  # fmt: skip
    flash(request, message)
    return redirect(request, f"/ui/resellers/{reseller_id}")


@router.post("/{reseller_id}/topup")
def topup(request: Request, me: AdminUser, reseller_id: int, form: Form) -> Response:
    """Credit the reseller's balance (a top-up, or a refund): one ledger row."""
    kind = "refund" if form.get("refund") else "topup"

    def action(s: Session) -> str:
        resellers.get(s, me, f"id:{reseller_id}")  # 404 for a reseller that does not exist
        new = ledger.topup(s, me.actor, _account(reseller_id), form.get("amount", ""), kind=kind)
        return f"Balance is now {new}."

    return _do(request, me, reseller_id, action, "", TOPUP_FIELDS, form, "topup")


@router.post("/{reseller_id}/assign")
def assign(request: Request, me: AdminUser, reseller_id: int, form: Form) -> Response:
    """Let the reseller sell a package, at its own price or (empty) the operator price."""

    def action(s: Session) -> str:
        a = registry.assign_package(
            s, me.actor, f"id:{reseller_id}", form.get("package", ""), form.get("price") or None
        )
        return f"{a.package.name!r} assigned."

    return _do(request, me, reseller_id, action, "", ASSIGN_FIELDS, form, "assign")


@router.post("/{reseller_id}/unassign")
def unassign(request: Request, me: AdminUser, reseller_id: int, form: Form) -> Response:
    def action(s: Session) -> str:
        registry.unassign_package(s, me.actor, f"id:{reseller_id}", form.get("package", ""))
        return f"{form.get('package', '')!r} unassigned."

    return _do(request, me, reseller_id, action, "", ASSIGN_FIELDS, form, "assign")
