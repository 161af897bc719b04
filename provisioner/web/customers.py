"""Customer pages the admin's panel and the reseller's desk share: search with filters
and paging (htmx swaps the rows as you type), and the customer form. Who may see and
change which customer, and what a reseller may set on one, are ``access``'s and
``registry.customers.reseller_write``'s rules, applied by the handlers as the API does."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from provisioner import access, users
from provisioner.auth import Principal
from provisioner.errors import ProvisionerError
from provisioner.read import activations, customers, packages, resellers, routers
from provisioner.read.models import CustomerOut, Page
from provisioner.web import formats
from provisioner.web.common import flash, page, read, redirect, write, zone_of
from provisioner.web.dashboard import usage_context
from provisioner.web.lists import csv_response

PAGE_SIZE = 25
TYPES = [(t, t) for t in ("pppoe", "hotspot", "static", "other")]
STATUSES = [(s, s) for s in customers.STATUSES]


def search_context(request: Request, me: Principal, base: str) -> dict[str, Any]:
    """One page of the customer search from the query string (q, status, reseller,
    package, page), with the links to the pages before and after it."""
    q = request.query_params
    filters = {k: q.get(k, "").strip() for k in ("q", "status", "reseller", "package")}
    if me.role != "admin":
        filters.pop("reseller")
    try:
        number = max(1, int(q.get("page", "1")))
    except ValueError:
        number = 1

    def load(s: Session) -> dict[str, Any]:
        try:
            found = customers.search(
                s, me, **{k: v or None for k, v in filters.items()},
                offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE,
            )  # fmt: skip
            error = None
        except ProvisionerError as exc:  # a package or reseller typed that is not one
            found, error = Page[CustomerOut](items=[], total=0, limit=PAGE_SIZE, offset=0), str(exc)
        return {"result": found, "filter_error": error, **choices(s, me)}

    found = read(request, load)
    total = found["result"].total

    def link(n: int) -> str:
        return f"{base}?{urlencode({**{k: v for k, v in filters.items() if v}, 'page': n})}"

    return {
        **found,
        "filters": filters,
        "number": number,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "prev_url": link(number - 1) if number > 1 else None,
        "next_url": link(number + 1) if number * PAGE_SIZE < total else None,
        "base": base,
        "csv_url": f"{base}.csv?{urlencode({k: v for k, v in filters.items() if v})}",
    }


CSV_COLUMNS = ["username", "type", "package", "reseller", "status", "expires (UTC)", "router"]


def search_csv(request: Request, me: Principal, filename: str) -> Response:
    """Every customer the search shows with these filters, as CSV (the reseller column
    for admins only)."""
    q = request.query_params
    filters = {k: q.get(k, "").strip() or None for k in ("q", "status", "reseller", "package")}
    if me.role != "admin":
        filters.pop("reseller")
    rows = read(request, lambda s: customers.search(s, me, **filters, limit=None).items)
    admin = me.role == "admin"
    header = [c for c in CSV_COLUMNS if admin or c != "reseller"]
    return csv_response(
        filename, header,
        ([c.username, c.customer_type, c.package or "", *([c.reseller or ""] if admin else []),
          c.status, c.expires_at or "", c.router or ""] for c in rows),
    )  # fmt: skip


def choices(s: Session, me: Principal) -> dict[str, Any]:
    """What the customer form and the filters offer this caller."""
    out: dict[str, Any] = {
        "package_choices": [("", "—")] + [(p.name, p.name) for p in packages.list_(s, me)],
        "router_choices": [("", "—")] + [(n, n) for n in routers.names(s, me)],
        "types": TYPES,
        "statuses": STATUSES,
    }
    if me.role == "admin":
        out["reseller_choices"] = [("", "—")] + [(r.name, r.name) for r in resellers.list_(s, me)]
    return out


def form_page(
    request: Request,
    me: Principal,
    form: dict[str, str],
    *,
    area: str,
    fields: tuple[str, ...],
    customer_id: int | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The customer form (new or edit) for the admin's panel and the reseller's desk: the
    choices this caller has, and for an edit the customer and its last activations."""

    def load(s: Session) -> dict[str, Any]:
        out = choices(s, me)
        if customer_id is not None:
            out["customer"] = customers.get(s, me, f"id:{customer_id}")
            out["recent"] = activations.list_(s, me, customer=f"id:{customer_id}", limit=10)
            formats.load_names(request, s, [a.payer for a in out["recent"]])
            out.update(usage_context(s, me, f"id:{customer_id}", zone_of(request)))
            out["customer_has_portal_password"] = users.has_portal_password(s, customer_id)
        return out

    return page(
        request, "customer_form.html", me, status=status, form=form, errors=errors or {},
        customer_id=customer_id, area=area, fields=fields, **read(request, load),
    )  # fmt: skip


def reset_portal_password(request: Request, me: Principal, customer_id: int, area: str) -> Response:
    """The operator's reset of a customer's portal password (its own customer only, by
    ``access``): the portal takes the PPPoE password again until the customer sets one."""

    def action(s: Session) -> str:
        c = access.customer(s, me, f"id:{customer_id}")
        users.reset_portal_password(s, me.actor, c)
        return c.username

    name = write(request, action)
    flash(
        request,
        f"Portal password of {name!r} reset: it logs in with its PPPoE password until it "
        "sets a new one.",
    )
    return redirect(request, f"{area}/{customer_id}")
