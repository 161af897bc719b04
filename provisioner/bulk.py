"""Customers in bulk: a CSV file in (checked whole, then stored all or nothing) and out.

An import checks every row by the rules of a single ``create_customer`` (the API body's
bounds, then what the caller may set, then the registry's own checks), and reports every
refusal with the file's line and the column, not only the first. Only a file without
one refusal is stored, in the caller's transaction: the customers in one batched insert,
their audit rows, then one ``effects.customers_changed`` for all of them, which writes
the RADIUS rows of every new user in one pass (``radius_store.sync_users``, in chunks)
and asks for one sync per router. A dry run checks and stores nothing.

What makes it fast is that no row costs a query of its own: the routers, packages and
resellers a file names are looked up once each, and the usernames, MAC and static
addresses already taken are read once (``_FromMemory``), then grow with the file's own
rows so that a name used twice in one file is refused on its second line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError as BodyError
from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.auth import Principal
from provisioner.errors import ProvisionerError, ValidationError
from provisioner.models import Customer, Package, Reseller, Router
from provisioner.read.models import ImportErrorOut, ImportOut
from provisioner.registry.customers import (
    Lookups,
    customers_created,
    new_customer,
    reseller_write,
)
from provisioner.schemas import CustomerCreate

COLUMNS = tuple(CustomerCreate.model_fields)
REQUIRED = ("username", "password", "customer_type")
# No password out: an export is a listing, and no face shows a credential.
EXPORT_COLUMNS = tuple(c for c in COLUMNS if c != "password")
MAX_ROWS = 100_000
_FIELD = {Router: "router", Package: "package", Reseller: "reseller"}


class _FromMemory(Lookups):
    """``Lookups`` for a whole file: each named row is looked up once; the customers an
    import could clash with are read once and joined by the file's rows as they pass."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._rows: dict[tuple[Any, str], Any] = {}
        self._taken: dict[str, dict[str, str]] = {
            "username": {},
            "mac_address": {},
            "static_ip": {},
        }
        for username, mac, ip in session.execute(
            select(Customer.username, Customer.mac_address, Customer.static_ip)
        ):
            self._claim(username, mac, ip)

    def _claim(self, username: str, mac: str | None, ip: str | None) -> None:
        self._taken["username"][username] = username
        if mac:
            self._taken["mac_address"][mac] = username
        if ip:
            self._taken["static_ip"][ip] = username

    def claim(self, c: Customer) -> None:
        self._claim(c.username, c.mac_address, c.static_ip)

    def row(self, model: Any, ref: str) -> Any:
        key = (model, ref)
        if key not in self._rows:
            try:
                self._rows[key] = super().row(model, ref)
            except ProvisionerError as exc:
                # Which column named nothing: the file's reader needs it, a form does not.
                self._rows[key] = type(exc)(exc.reason, field=exc.field or _FIELD.get(model))
        found = self._rows[key]
        if isinstance(found, ProvisionerError):
            raise found
        return found

    def holder(self, column: str, value: str, own_id: int | None) -> str | None:
        return self._taken[column].get(value)


def parse(text: str) -> list[tuple[int, dict[str, str]]]:
    """The rows of a CSV file with a header line, each with its line number (the header
    is line 1); empty cells are left out. A missing required column, an unknown one or
    a file of more than ``MAX_ROWS`` rows is refused as a whole."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), strict=True)
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise ValidationError(f"not CSV: {exc}", field="file") from None
    if not header:
        raise ValidationError("is empty (a header line comes first)", field="file")
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise ValidationError(
            f"unknown columns {', '.join(unknown)}; known: {', '.join(COLUMNS)}", field="file"
        )
    missing = [h for h in REQUIRED if h not in header]
    if missing:
        raise ValidationError(f"the columns {', '.join(missing)} are required", field="file")
    reader.fieldnames = header
    rows = []
    line = 1
    try:
        for raw in reader:
            if None in raw:
                rows.append((reader.line_num, {"": "has more cells than the header"}))
            else:
                cells = {k: v.strip() for k, v in raw.items() if v is not None and v.strip()}
                rows.append((reader.line_num, cells))
            line = reader.line_num
            if len(rows) > MAX_ROWS:
                raise ValidationError(f"has more than {MAX_ROWS} rows", field="file")
    except csv.Error as exc:
        raise ValidationError(f"line {line + 1}: {exc}", field="file") from None
    return rows


def check(
    session: Session, principal: Principal, rows: Iterable[tuple[int, dict[str, str]]]
) -> tuple[list[Customer], list[ImportErrorOut]]:
    """Every row checked as ``create_customer`` would check it (as this caller may make
    it): the customers, not yet added to the session, and every refusal by line and
    field."""
    principal.require("admin", "reseller")
    lookups = _FromMemory(session)
    made: list[Customer] = []
    errors: list[ImportErrorOut] = []
    for line, cells in rows:
        if "" in cells:
            errors.append(ImportErrorOut(line=line, field=None, error=cells[""]))
            continue
        try:
            body = CustomerCreate.model_validate(cells)
        except BodyError as exc:
            for e in exc.errors():
                field = ".".join(str(p) for p in e["loc"]) or None
                errors.append(ImportErrorOut(line=line, field=field, error=e["msg"]))
            continue
        try:
            data = reseller_write(session, principal, body.given())
            c = new_customer(session, data, lookups)
        except ProvisionerError as exc:
            errors.append(ImportErrorOut(line=line, field=exc.field, error=exc.reason))
            continue
        lookups.claim(c)
        made.append(c)
    return made, errors


def import_csv(session: Session, principal: Principal, text: str, *, dry_run: bool) -> ImportOut:
    """Check the whole file; unless it is a dry run and only if no row was refused, add
    every customer (in the caller's transaction, which the caller commits). A reseller's
    rows are its own customers, on its own packages (``reseller_write``)."""
    rows = parse(text)
    made, errors = check(session, principal, rows)
    if dry_run or errors:
        return ImportOut(dry_run=dry_run, rows=len(rows), created=0, errors=errors)
    session.add_all(made)
    session.flush()
    customers_created(session, principal.actor, made)
    return ImportOut(dry_run=False, rows=len(rows), created=len(made), errors=[])


def export_csv(session: Session, principal: Principal, *, reseller: str | None = None) -> str:
    """The customers this caller may see (``reseller``: an admin's look at one reseller's),
    by username, as CSV in the import's columns, without passwords."""
    from provisioner.read import customers

    out = io.StringIO()
    w = csv.DictWriter(out, EXPORT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    principal.require("admin", "reseller")
    for c in customers.list_(session, principal, reseller=reseller):
        w.writerow({k: v for k, v in c.model_dump().items() if v is not None})
    return out.getvalue()
