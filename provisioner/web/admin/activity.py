"""What happened: activations with their provisioning status, recharge card batches
(generate, print), and the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from provisioner import cards
from provisioner.errors import ProvisionerError
from provisioner.http_threads import Route, slow
from provisioner.read import activations, audit
from provisioner.read import cards as card_batches
from provisioner.read.models import CardOut
from provisioner.schemas import CardBatch
from provisioner.web import formats
from provisioner.web.common import (
    AdminUser,
    Form,
    check_csrf,
    errors_of,
    page,
    read,
    status_for,
    write,
    zone_of,
)
from provisioner.web.forms import body
from provisioner.web.lists import csv_response, filters_of, number_of, paging, query

router = APIRouter(route_class=Route, prefix="/ui", dependencies=[Depends(check_csrf)])
CARD_FIELDS = ("count", "value", "days", "batch")
PAGE = 50
STATUSES = [("", "any status")] + [(s, s) for s in activations.STATUSES]


ACTIVATION_COLUMNS = ["#", "when (UTC)", "customer", "package", "payer", "price", "until",
                      "provisioning"]  # fmt: skip


def _activations(s: Session, me: Any, filters: dict[str, str], **kw: Any) -> Any:
    return activations.page(
        s, me, status=filters["status"] or None, customer=filters["customer"] or None, **kw
    )


@router.get("/activations")
def list_activations(request: Request, me: AdminUser) -> Response:
    """The activations, newest first, by status and customer, paged."""
    filters = filters_of(request, ("status", "customer"))
    number = number_of(request)
    found = read(
        request,
        lambda s: _activations(s, me, filters, limit=PAGE, offset=(number - 1) * PAGE),
    )
    payers = [a.payer for a in found.items]
    read(request, lambda s: formats.load_names(request, s, payers))  # all names at once
    return page(
        request, "admin/activations.html", me, activations=found.items, statuses=STATUSES,
        filters=filters, **paging("/ui/activations", filters, number, found.total, PAGE),
    )  # fmt: skip


@router.get("/activations.csv")
def activations_csv(request: Request, me: AdminUser) -> Response:
    filters = filters_of(request, ("status", "customer"))
    rows = read(request, lambda s: _activations(s, me, filters, limit=None).items)
    return csv_response(
        "activations.csv", ACTIVATION_COLUMNS,
        ([a.id, a.at, a.customer, a.package, a.payer, a.price, a.expires_at, a.status]
         for a in rows),
    )  # fmt: skip


def _cards_page(request: Request, me: Any, **context: Any) -> Response:
    batches = read(request, lambda s: card_batches.batches(s, me))
    context.setdefault("form", {"count": "10", "value": "500", "days": "365", "batch": ""})
    return page(request, "admin/cards.html", me, batches=batches, **context)


@router.get("/cards")
def card_page(request: Request, me: AdminUser) -> Response:
    return _cards_page(request, me)


@router.post("/cards")
@slow  # up to 10,000 cards in one transaction
def generate_cards(request: Request, me: AdminUser, form: Form) -> Response:
    """A batch of cards, shown once as a sheet to print: only the PINs' hashes are kept."""
    try:
        spec = CardBatch(**body(CardBatch, form, CARD_FIELDS))
        made = write(
            request, lambda s: cards.generate(s, spec.count, spec.value, spec.days, spec.batch)
        )
    except ProvisionerError as exc:
        return _cards_page(
            request, me, form=form, errors=errors_of(exc, CARD_FIELDS), status=status_for(exc)
        )
    return page(
        request, "admin/card_sheet.html", me, spec=spec,
        cards=[CardOut(serial=s, pin=p) for s, p in made],
    )  # fmt: skip


AUDIT_FILTERS = ("entity", "actor", "since", "until")
AUDIT_PAGE = 50
CSV_CHUNK = 1000


def _audit_filters(request: Request) -> tuple[audit.Filters, dict[str, str], dict[str, str]]:
    """The audit page's filters from the query string; a date that is not one is named
    beside its field, and the log is shown without it."""
    raw = filters_of(request, AUDIT_FILTERS)
    errors: dict[str, str] = {}
    days: dict[str, date | None] = {}
    for key in ("since", "until"):
        try:
            days[key] = date.fromisoformat(raw[key]) if raw[key] else None
        except ValueError:
            errors[key] = "must be a date (YYYY-MM-DD)"
            days[key] = None
    entity = raw["entity"] if raw["entity"] in audit.ENTITIES else ""
    f = audit.Filters(
        entity=entity, actor=raw["actor"], since=days["since"], until=days["until"],
        zone=zone_of(request),
    )  # fmt: skip
    return f, raw, errors


@router.get("/audit")
def audit_log(request: Request, me: AdminUser, before: int | None = None) -> Response:
    """The audit log, newest first, 50 rows a page (paged by id), filtered by what, who and
    the days; values in the units the forms use."""
    f, raw, errors = _audit_filters(request)

    def load(s: Session) -> tuple[list[audit.Entry], int | None]:
        rows, older = audit.keyset(s, me, f, before=before, limit=AUDIT_PAGE)
        return audit.shown(s, rows), older

    entries, older = read(request, load)
    return page(
        request, "admin/audit.html", me, entries=entries, filters=raw, errors=errors,
        entities=[(e, e.replace("_", " ")) for e in audit.ENTITIES],
        older_url=f"/ui/audit?{query(raw, before=older)}" if older else None,
        newest_url=f"/ui/audit?{query(raw)}" if before is not None else None,
        csv_url=f"/ui/audit.csv?{query(raw)}",
    )  # fmt: skip


@router.get("/audit.csv")
def audit_csv(request: Request, me: AdminUser) -> Response:
    """What the audit page shows with these filters, every page of it, as CSV."""
    f, _raw, _errors = _audit_filters(request)

    def rows() -> Iterator[list[Any]]:
        before: int | None = None
        while True:

            def load(s: Session, b: int | None = before) -> tuple[list[audit.Entry], int | None]:
                found, older = audit.keyset(s, me, f, before=b, limit=CSV_CHUNK)
                return audit.shown(s, found), older

            entries, before = read(request, load)
            for e in entries:
                yield [e.at, e.actor, e.action, e.what, audit.changes_text(e.changes)]
            if before is None:
                return

    return csv_response("audit.csv", ["when (UTC)", "who", "action", "what", "changes"], rows())
