"""Invoices and their payments, as each caller may see them, and an invoice to print.

Admin: all. Reseller: its subtree's customers'. Customer: its own. Outside that scope an
invoice answers 404, as one that does not exist.
"""

from __future__ import annotations

from html import escape

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import access, effects, invoices, validation
from provisioner.auth import Principal
from provisioner.errors import ValidationError
from provisioner.models import Customer, Invoice, Package, Payment, Reseller
from provisioner.read.models import InvoiceOut, PaymentOut
from provisioner.refs import refers_to


def _view(session: Session, inv: Invoice) -> InvoiceOut:
    c = session.get(Customer, inv.customer_id)
    assert c is not None
    p = session.get(Package, inv.package_id) if inv.package_id else None
    r = session.get(Reseller, c.reseller_id) if c.reseller_id else None
    pays = session.scalars(select(Payment).where(Payment.invoice_id == inv.id).order_by(Payment.id))
    return InvoiceOut(
        id=inv.id,
        customer=c.username,
        reseller=r.name if r else None,
        package=p.name if p else None,
        amount=str(inv.amount),
        currency=effects.settings_of(session).currency,
        period_start=inv.period_start.isoformat(),
        period_end=inv.period_end.isoformat(),
        due_at=inv.due_at.isoformat(),
        status=inv.status,
        paid_at=inv.paid_at.isoformat() if inv.paid_at else None,
        issued_at=inv.created_at.isoformat(timespec="seconds"),
        activation_id=inv.activation_id,
        payments=[
            PaymentOut(
                amount=str(x.amount), method=x.method, actor=x.actor, reference=x.reference,
                at=x.at.isoformat(timespec="seconds"),
            )
            for x in pays
        ],
    )  # fmt: skip


def get(session: Session, principal: Principal, invoice_id: int) -> InvoiceOut:
    """One invoice with its payments."""
    return _view(session, invoices.invoice(session, principal, invoice_id))


def list_(
    session: Session,
    principal: Principal,
    *,
    customer: str | None = None,
    reseller: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[InvoiceOut]:
    """At most ``limit`` invoices, newest period first, of the customers this caller may
    see: of one customer, of one reseller's subtree, in one status, or all."""
    limit = validation.positive_int("limit", limit)
    q = (
        select(Invoice)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(*access.customer_filter(session, principal))
        .order_by(Invoice.period_start.desc(), Invoice.id.desc())
        .limit(limit)
    )
    if customer is not None:
        q = q.where(Customer.id == access.customer(session, principal, customer).id)
    if reseller is not None:
        if principal.role == "customer":
            raise ValidationError("customers see their own invoices", field="reseller")
        if principal.role == "reseller" and refers_to(
            reseller, (me := access.own_reseller(session, principal)).name, me.id
        ):
            rid = me.id
        else:
            rid = access.reseller(session, principal, reseller).id
        # Its ids first: the caller's own scope is a CTE of the same name.
        q = q.where(Customer.reseller_id.in_(list(session.scalars(access.subtree(rid)))))
    if status is not None:
        if status not in invoices.STATUSES:
            raise ValidationError(f"must be one of {', '.join(invoices.STATUSES)}", field="status")
        q = q.where(Invoice.status == status)
    return [_view(session, inv) for inv in session.scalars(q)]


def html(session: Session, principal: Principal, invoice_id: int) -> str:
    """The invoice as a printable HTML page (every value escaped)."""
    v = get(session, principal, invoice_id)
    rows = [
        ("Invoice", f"#{v.id}"),
        ("Customer", v.customer),
        ("Reseller", v.reseller or "—"),
        ("Package", v.package or "—"),
        ("Period", f"{v.period_start[:10]} – {v.period_end[:10]}"),
        ("Due", v.due_at[:10]),
        ("Amount", f"{v.amount} {v.currency}"),
        ("Status", v.status + (f" ({v.paid_at[:10]})" if v.paid_at else "")),
    ]
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(val)}</td></tr>" for k, val in rows)
    pays = "".join(
        f"<tr><td>{escape(p.at)}</td><td>{escape(p.method)}</td>"
        f"<td>{escape(p.amount)}</td><td>{escape(p.reference)}</td></tr>"
        for p in v.payments
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>Invoice {v.id}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}th,td{border:1px solid #999;padding:.3em .6em;"
        "text-align:left}@media print{a{display:none}}</style></head><body>"
        f"<h1>Invoice {v.id}</h1><table>{body}</table>"
        + (
            "<h2>Payments</h2><table><tr><th>At</th><th>Method</th><th>Amount</th>"
            f"<th>Reference</th></tr>{pays}</table>"
            if pays
            else ""
        )
        + "</body></html>"
    )
