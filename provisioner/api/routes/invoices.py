"""Monthly invoices and their payments (``provisioner.invoices``).

Admin: every invoice, records payments received. Reseller: its subtree's customers'
invoices, pays them from its own balance. Customer: its own, paid from its balance.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from provisioner import invoices
from provisioner.api.deps import AdminDep, PayerDep, PrincipalDep, SessionDep
from provisioner.http_threads import Route
from provisioner.read import invoices as read
from provisioner.read.models import ErrorOut, InvoiceOut
from provisioner.schemas import InvoiceStatus, Key, Ref
from provisioner.validation import MAX_INT

router = APIRouter(route_class=Route, tags=["invoices"])
InvoiceId = Annotated[int, Path(ge=1, le=MAX_INT)]


class PaymentCreate(BaseModel):
    """A payment of an invoice in full; ``reference``: a receipt number, say. A customer
    may pay with a recharge card (``card_serial`` and ``card_pin``): the card tops up its
    balance, which then pays the invoice."""

    reference: Key | None = None
    card_serial: Key | None = None
    card_pin: Key | None = None


class InvoiceVoid(BaseModel):
    """Why the invoice is cancelled (kept in the audit log)."""

    reason: Key | None = None


@router.get("/invoices")
def list_invoices(
    session: SessionDep,
    principal: PrincipalDep,
    customer: Annotated[Ref | None, Query(description="a username, or id:N")] = None,
    reseller: Annotated[Ref | None, Query(description="a reseller (its subtree's)")] = None,
    status: Annotated[InvoiceStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[InvoiceOut]:
    """Invoices, newest period first, with their payments."""
    return read.list_(
        session, principal, customer=customer, reseller=reseller, status=status, limit=limit
    )


@router.get("/invoices/{invoice_id}")
def get_invoice(invoice_id: InvoiceId, session: SessionDep, principal: PrincipalDep) -> InvoiceOut:
    return read.get(session, principal, invoice_id)


@router.get(
    "/invoices/{invoice_id}/print",
    # Its refusals are JSON, as every other operation's; the page itself is HTML or PDF.
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/html": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            }
        }
    },
)
def print_invoice(
    invoice_id: InvoiceId,
    session: SessionDep,
    principal: PrincipalDep,
    format: Annotated[Literal["html", "pdf"], Query(description="html | pdf")] = "html",
) -> Response:
    """The invoice to print: an HTML page, or with ``format=pdf`` a one-page PDF."""
    if format == "pdf":
        body = read.pdf(session, principal, invoice_id)
        return Response(body, media_type="application/pdf")
    return HTMLResponse(read.html(session, principal, invoice_id))


@router.post(
    "/invoices/{invoice_id}/payments",
    status_code=201,
    responses={402: {"model": ErrorOut, "description": "the payer (or an operator above it) "
                     "cannot pay: nothing charged, the invoice stays open"}},
)  # fmt: skip
def pay_invoice(
    invoice_id: InvoiceId, body: PaymentCreate, session: SessionDep, principal: PayerDep
) -> InvoiceOut:
    """Pay an open invoice in full, as one sale (README, "Who pays for a period"): an admin
    records money it received; an operator records cash it collected and pays its own
    price for the package (every operator above it too); a customer pays from its balance
    or with a card, even while suspended as unpaid. Service is restored at once. A paid
    or voided invoice is a 409: never a second payment."""
    inv = invoices.pay(
        session, principal, invoice_id, reference=body.reference or "",
        card_serial=body.card_serial, card_pin=body.card_pin,
    )  # fmt: skip
    return read.get(session, principal, inv.id)


@router.post("/invoices/{invoice_id}/void")
def void_invoice(
    invoice_id: InvoiceId, body: InvoiceVoid, session: SessionDep, admin: AdminDep
) -> InvoiceOut:
    """Cancel an open invoice (admin; audited). Nothing paid is lost: the customer keeps
    only what it paid for, and a suspension for not paying it becomes an expiry."""
    inv = invoices.void(session, admin.actor, invoice_id, body.reason or "")
    return read.get(session, admin, inv.id)
