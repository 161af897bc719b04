"""What happened: activations with their provisioning status, recharge card batches
(generate, print), and the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from provisioner import cards
from provisioner.errors import ProvisionerError
from provisioner.http_threads import slow
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
)
from provisioner.web.forms import body

router = APIRouter(prefix="/ui", dependencies=[Depends(check_csrf)])
CARD_FIELDS = ("count", "value", "days", "batch")
STATUSES = [("", "any status")] + [(s, s) for s in activations.STATUSES]


@router.get("/activations")
def list_activations(
    request: Request, me: AdminUser, status: str = "", customer: str = ""
) -> Response:
    rows = read(
        request,
        lambda s: activations.list_(
            s, me, status=status or None, customer=customer or None, limit=100
        ),
    )
    read(request, lambda s: formats.load_names(request, s, [a.payer for a in rows]))  # at once
    return page(
        request, "admin/activations.html", me, activations=rows, statuses=STATUSES,
        filters={"status": status, "customer": customer},
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


@router.get("/audit")
def audit_log(request: Request, me: AdminUser, entity: str = "", limit: int = 100) -> Response:
    rows = read(
        request, lambda s: audit.list_(s, me, entity=entity or None, limit=min(limit, 1000))
    )
    return page(request, "admin/audit.html", me, entries=rows, entity=entity, limit=limit)
