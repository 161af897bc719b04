"""How every page shows money, times and who did something: one place, as Jinja filters
on the templates' environment (``install``), so the admin's panel, the reseller's desk
and the portal read alike.

- ``money``: thousands separators, the configured decimals and the currency
  ("1,234.50 BDT"; settings ``money_*``, ``currency``, ``currency_before``).
- ``when`` / ``day``: a stored UTC time in the configured ``timezone``.
- ``who``: a payer or actor (``reseller:3``, ``customer:1003``, ``admin:root``, ``cli``)
  by name, spelled one way. A page that shows many loads their names at once
  (``load_names``); a name not loaded is looked up once per request.

Storage stays UTC: ``utc_of_local`` turns what a date input sent back into UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, pass_context
from jinja2.runtime import Context as JinjaContext
from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.config import Settings, get_settings
from provisioner.db import reading
from provisioner.errors import ValidationError
from provisioner.models import Customer, Reseller

# ---- pure ------------------------------------------------------------------------------


def money_text(value: Any, settings: Settings, *, currency: bool = True) -> str:
    """``value`` (a Decimal, number or decimal text) as the settings write money."""
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    text = f"{amount:,.{settings.money_decimals}f}"
    # Python writes "," and "."; swap them for the configured marks in one pass.
    marks = {",": settings.money_thousands, ".": settings.money_decimal_mark}
    text = "".join(marks.get(ch, ch) for ch in text)
    if not currency or not settings.currency:
        return text
    return (
        f"{settings.currency} {text}" if settings.currency_before else f"{text} {settings.currency}"
    )


def as_utc(value: Any) -> datetime | None:
    """A stored time (a datetime, naive meaning UTC, or ISO text) in UTC; None for none."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        at = value
    else:
        try:
            at = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def local(value: Any, zone: str) -> datetime | None:
    at = as_utc(value)
    return at.astimezone(ZoneInfo(zone)) if at is not None else None


def when_text(value: Any, zone: str, *, seconds: bool = False) -> str:
    """A time as people read it in ``zone``: "2027-01-06 16:23"."""
    at = local(value, zone)
    if at is None:
        return "" if value in (None, "") else str(value)
    return at.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def local_input(value: Any, zone: str) -> str:
    """A stored time as a ``datetime-local`` input's value in ``zone``."""
    at = local(value, zone)
    return at.strftime("%Y-%m-%dT%H:%M") if at is not None else ""


def utc_of_local(text: str, zone: str, field: str, *, current: str | None = None) -> str:
    """What a ``datetime-local`` (or ``date``) input sent, in ``zone``, as UTC ISO text.
    Unchanged from ``current`` (to the minute the input shows) gives ``current`` back, so
    saving a form does not move a time by its seconds."""
    text = text.strip()
    if not text:
        return ""
    if current and local_input(current, zone) == text:
        return current
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError("must be a date and time (YYYY-MM-DD HH:MM)", field=field) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(zone))
    return at.astimezone(UTC).isoformat()


def actor_text(ref: str | None, names: dict[str, str]) -> str:
    """A payer or actor, one spelling for each: "resA (reseller)", "walkin", "root
    (admin)", "admin", "CLI", "system"."""
    if not ref:
        return "—"
    kind, _, rest = ref.partition(":")
    if kind in ("reseller", "customer") and rest:
        name = names.get(ref)
        if name is None:
            return f"{kind} #{rest} (removed)"
        return f"{name} (reseller)" if kind == "reseller" else name
    if kind == "admin":
        if rest in ("", "api", "admin"):
            return "admin"
        return "CLI" if rest == "cli" else f"{rest} (admin)"
    if ref == "cli":
        return "CLI"
    return ref


# ---- names from the registry ------------------------------------------------------------


def names_of(session: Session, refs: Iterable[str | None]) -> dict[str, str]:
    """The names of these ``reseller:N`` / ``customer:N`` refs (one query per kind)."""
    ids: dict[str, set[int]] = {"reseller": set(), "customer": set()}
    for ref in refs:
        kind, _, rest = (ref or "").partition(":")
        if kind in ids and rest.isdigit():
            ids[kind].add(int(rest))
    out: dict[str, str] = {}
    wanted = sorted(ids["reseller"])
    for i in range(0, len(wanted), 500):
        for rid, name in session.execute(
            select(Reseller.id, Reseller.name).where(Reseller.id.in_(wanted[i : i + 500]))
        ):
            out[f"reseller:{rid}"] = name
    wanted = sorted(ids["customer"])
    for i in range(0, len(wanted), 500):
        for cid, name in session.execute(
            select(Customer.id, Customer.username).where(Customer.id.in_(wanted[i : i + 500]))
        ):
            out[f"customer:{cid}"] = name
    return out


def load_names(request: Any, session: Session, refs: Iterable[str | None]) -> None:
    """Load the names a page is about to show, at once (``who`` reads them)."""
    cache = _names(request)
    missing = [r for r in refs if r and r not in cache]
    found = names_of(session, missing)
    cache.update({r: found.get(r, "") for r in missing if ":" in r})
    cache.update(found)


def _names(request: Any) -> dict[str, str]:
    state = request.state
    if not hasattr(state, "names"):
        state.names = {}
    return state.names  # type: ignore[no-any-return]


# ---- filters ---------------------------------------------------------------------------


def _settings(ctx: JinjaContext) -> Settings:
    request = ctx.get("request")
    app_ctx = getattr(getattr(getattr(request, "app", None), "state", None), "ctx", None)
    return app_ctx.settings if app_ctx is not None else get_settings()


@pass_context
def money(ctx: JinjaContext, value: Any, currency: bool = True) -> str:
    return money_text(value, _settings(ctx), currency=currency)


@pass_context
def when(ctx: JinjaContext, value: Any, seconds: bool = False) -> str:
    return when_text(value, _settings(ctx).timezone, seconds=seconds)


@pass_context
def day(ctx: JinjaContext, value: Any) -> str:
    return when_text(value, _settings(ctx).timezone)[:10]


@pass_context
def datetime_input(ctx: JinjaContext, value: Any) -> str:
    return local_input(value, _settings(ctx).timezone)


@pass_context
def who(ctx: JinjaContext, ref: str | None) -> str:
    request = ctx.get("request")
    if request is None:
        return actor_text(ref, {})
    cache = _names(request)
    if ref and ":" in ref and ref not in cache and ref.split(":")[0] in ("reseller", "customer"):
        # Not loaded by the page: one lookup, remembered for the rest of the request.
        with reading(request.app.state.ctx.factory) as s:
            load_names(request, s, [ref])
    return actor_text(ref, {k: v for k, v in cache.items() if v})


@pass_context
def zone(ctx: JinjaContext, _: Any = None) -> str:
    return _settings(ctx).timezone


def install(env: Environment) -> None:
    """Register the filters (and the zone's name as a global) on a templates environment."""
    env.filters.update(
        money=money, when=when, day=day, datetime_input=datetime_input, who=who, zone=zone
    )
