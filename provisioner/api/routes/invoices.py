"""Monthly invoices and their payments (``provisioner.invoices``).

Admin: every invoice, records payments received. Reseller: its subtree's customers'
invoices, pays them from its own balance. Customer: its own, paid from its balance.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import HTMLResponse

from provisioner import invoices
from provisioner.api.deps import PrincipalDep, SessionDep
from provisioner.read import invoices as read
from provisioner.read.models import InvoiceOut
from provisioner.schemas import Body, Key, Ref, Word
from provisioner.validation import MAX_INT

router = APIRouter(tags=["invoices"])
InvoiceId = Annotated[int, Path(ge=1, le=MAX_INT)]


class PaymentCreate(Body):
    """A payment of an invoice in full; ``reference``: a receipt number, say."""

    reference: Key | None = None


@router.get("/invoices")
def list_invoices(
    session: SessionDep,
    principal: PrincipalDep,
    customer: Annotated[Ref | None, Query(description="a username, or id:N")] = None,
    reseller: Annotated[Ref | None, Query(description="a reseller (its subtree's)")] = None,
    status: Annotated[Word | None, Query(description="open | paid | void")] = None,
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
    response_class=HTMLResponse,
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


@router.post("/invoices/{invoice_id}/payments", status_code=201)
def pay_invoice(
    invoice_id: InvoiceId, body: PaymentCreate, session: SessionDep, principal: PrincipalDep
) -> InvoiceOut:
    """Pay an open invoice in full: an admin records money received; a reseller pays from
    its balance, a customer from its own. Service is restored at once."""
    inv = invoices.pay(session, principal, invoice_id, reference=body.reference or "")
    return read.get(session, principal, inv.id)
