"""Invoices and their payments, as each caller may see them, and an invoice to print.

Admin: all. Reseller: its subtree's customers'. Customer: its own. Outside that scope an
invoice answers 404, as one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from provisioner import access, effects, invoices, sale, validation
from provisioner.auth import Principal
from provisioner.errors import ValidationError
from provisioner.models import Customer, Invoice, Package, Payment, Reseller, ResellerPackage
from provisioner.read import paging
from provisioner.read.models import InvoiceOut, Page, PaymentOut
from provisioner.read.online import customers_of
from provisioner.refs import get_by_name, refers_to


@dataclass(frozen=True)
class InvoiceRow:
    """An invoice as a list shows it (one joined query for a whole page)."""

    id: int
    customer: str
    customer_id: int
    reseller: str | None
    package: str | None
    amount: Decimal
    period_start: datetime
    period_end: datetime
    due_at: datetime
    status: str
    paid_at: datetime | None


def _rows(*where: Any) -> Select[Any]:
    """The invoices matching ``where`` (on the invoice and its customer) as ``InvoiceRow``
    columns, newest period first: one joined statement for any number of them."""
    return (
        select(
            Invoice.id, Customer.username, Customer.id, Reseller.name, Package.name,
            Invoice.amount, Invoice.period_start, Invoice.period_end, Invoice.due_at,
            Invoice.status, Invoice.paid_at,
        )
        .join(Customer, Customer.id == Invoice.customer_id)
        .outerjoin(Reseller, Reseller.id == Customer.reseller_id)
        .outerjoin(Package, Package.id == Invoice.package_id)
        .where(*where)
        .order_by(Invoice.period_start.desc(), Invoice.id.desc())
    )  # fmt: skip


def _views(session: Session, principal: Principal, stmt: Select[Any]) -> list[InvoiceOut]:
    """``_rows``' invoices in full, with their payments: three statements however many
    (an operator's own price for each package in the same one as its invoices)."""
    stmt = stmt.add_columns(Invoice.created_at, Invoice.activation_id, Package)
    mine = principal.role == "reseller"
    if mine:  # an operator sees what it pays for the period and its margin
        stmt = stmt.add_columns(ResellerPackage).outerjoin(
            ResellerPackage,
            (ResellerPackage.reseller_id == principal.reseller_id)
            & (ResellerPackage.package_id == Invoice.package_id),
        )
    found = list(session.execute(stmt))
    pays: dict[int, list[PaymentOut]] = {r[0]: [] for r in found}
    if pays:
        for x in session.scalars(
            select(Payment).where(Payment.invoice_id.in_(list(pays))).order_by(Payment.id)
        ):
            pays[x.invoice_id].append(
                PaymentOut(
                    amount=str(x.amount), method=x.method, actor=x.actor,
                    reference=x.reference, at=x.at.isoformat(timespec="seconds"),
                )
            )  # fmt: skip
    currency = effects.settings_of(session).currency
    out = []
    for r in found:
        row, (issued, activation_id, package) = InvoiceRow(*r[:11]), r[11:14]
        yours = sale.operator_price(r[14], package) if mine and package is not None else None
        out.append(
            InvoiceOut(
                id=row.id,
                customer=row.customer,
                reseller=row.reseller,
                package=row.package,
                amount=str(row.amount),
                currency=currency,
                period_start=row.period_start.isoformat(),
                period_end=row.period_end.isoformat(),
                due_at=row.due_at.isoformat(),
                status=row.status,
                paid_at=row.paid_at.isoformat() if row.paid_at else None,
                issued_at=issued.isoformat(timespec="seconds"),
                activation_id=activation_id,
                your_price=None if yours is None else str(yours),
                margin=None if yours is None else str(row.amount - yours),
                payments=pays[row.id],
            )
        )
    return out


def get(session: Session, principal: Principal, invoice_id: int) -> InvoiceOut:
    """One invoice with its payments."""
    inv = invoices.invoice(session, principal, invoice_id)  # 404 outside the caller's scope
    (view,) = _views(session, principal, _rows(Invoice.id == inv.id))
    return view


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
    where = list(customers_of(session, principal))
    if customer is not None:
        where.append(Customer.id == access.customer(session, principal, customer).id)
    if reseller is not None:
        if principal.role == "customer":
            raise ValidationError("customers see their own invoices", field="reseller")
        if principal.role == "reseller" and refers_to(
            reseller, (me := access.own_reseller(session, principal)).name, me.id
        ):
            rid = me.id
        else:
            rid = access.reseller(session, principal, reseller).id
        where.append(Customer.reseller_id.in_(list(session.scalars(access.subtree(rid)))))
    if status is not None:
        if status not in invoices.STATUSES:
            raise ValidationError(f"must be one of {', '.join(invoices.STATUSES)}", field="status")
        where.append(Invoice.status == status)
    return _views(session, principal, _rows(*where).limit(limit))


def page(
    session: Session,
    principal: Principal,
    *,
    q: str | None = None,
    status: str | None = None,
    reseller: str | None = None,
    due_from: datetime | None = None,
    due_before: datetime | None = None,
    offset: int = 0,
    limit: int | None = 25,
) -> Page[InvoiceRow]:
    """One page of the invoices this caller may see, newest period first: of customers
    whose username contains ``q``, in ``status``, of one ``reseller``'s own customers
    (admins), due in [``due_from``, ``due_before``)."""
    # On the customer (scope, name, reseller) and on the invoice: a count needs the
    # customers only for the first.
    where = list(customers_of(session, principal))
    where += paging.contains(Customer.username, q)
    own: list[Any] = []
    if status:
        if status not in invoices.STATUSES:
            raise ValidationError(f"must be one of {', '.join(invoices.STATUSES)}", field="status")
        own.append(Invoice.status == status)
    if reseller:
        principal.require("admin")
        where.append(Customer.reseller_id == get_by_name(session, Reseller, reseller).id)
    if due_from is not None:
        own.append(Invoice.due_at >= due_from)
    if due_before is not None:
        own.append(Invoice.due_at < due_before)
    # Counted without the joins the rows need only for their names.
    limit, offset = paging.bounds(limit, offset)
    counted = select(func.count()).select_from(Invoice).where(*own)
    if where:
        counted = counted.join(Customer, Customer.id == Invoice.customer_id).where(*where)
    total = int(session.scalar(counted) or 0)
    cut = _rows(*where, *own).offset(offset).limit(limit if limit is not None else total)
    return Page[InvoiceRow](
        items=[InvoiceRow(*r) for r in session.execute(cut)], total=total,
        limit=limit if limit is not None else total, offset=offset,
    )  # fmt: skip


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


def _pdf_text(s: str) -> str:
    # PDF's standard fonts speak Latin-1; the rest becomes "?", and ( ) \ are escaped.
    s = s.encode("latin-1", "replace").decode("latin-1")
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf(session: Session, principal: Principal, invoice_id: int) -> bytes:
    """The invoice as a one-page PDF (A4, Helvetica): the same lines as the HTML page."""
    v = get(session, principal, invoice_id)
    lines = [
        f"Invoice {v.id}",
        "",
        f"Customer: {v.customer}",
        f"Reseller: {v.reseller or '-'}",
        f"Package: {v.package or '-'}",
        f"Period: {v.period_start[:10]} - {v.period_end[:10]}",
        f"Due: {v.due_at[:10]}",
        f"Amount: {v.amount} {v.currency}",
        f"Status: {v.status}" + (f" ({v.paid_at[:10]})" if v.paid_at else ""),
    ]
    if v.payments:
        lines += ["", "Payments:"]
        lines += [f"  {p.at}  {p.method}  {p.amount}  {p.reference}" for p in v.payments]
    text = (
        "BT /F1 12 Tf 16 TL 56 780 Td "
        + " ".join(f"({_pdf_text(line)}) '" for line in lines)
        + " ET"
    )
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        "/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        f"<< /Length {len(text.encode('latin-1'))} >>\nstream\n{text}\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)
