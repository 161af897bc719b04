"""How business is today, who is online, how much a customer used: the admin's and the
reseller's dashboards (``/ui/dashboard``, ``/ui/desk/dashboard``), the online sessions
with Disconnect (``/ui/sessions``, ``/ui/desk/sessions``), and a customer's usage this
cycle (``usage_context``, shown on its page and in the portal).

Figures come from ``read.dashboard`` / ``read.online`` with the caller's ``Principal``,
so a reseller sees its subtree only; a Disconnect is ``effects.disconnect_session``
(``sessions.work`` through the outbox, audited), as every other Disconnect.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from provisioner import access, effects, fup
from provisioner.auth import Principal
from provisioner.http_threads import Route
from provisioner.read import balances, dashboard, online, routers
from provisioner.web import charts, formats
from provisioner.web.common import (
    AdminUser,
    ResellerUser,
    check_csrf,
    ctx_of,
    flash,
    page,
    read,
    redirect,
    write,
    zone_of,
)

router = APIRouter(route_class=Route, include_in_schema=False, dependencies=[Depends(check_csrf)])
PAGE_SIZE = 50
LAYOUT = {"admin": "admin/base.html", "reseller": "desk/base.html"}
BASE = {"admin": "/ui", "reseller": "/ui/desk"}


def _gib(n: float) -> str:
    """Bytes as people read usage: "330.0 MiB", "1.25 GiB"."""
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _dashboard(request: Request, me: Principal) -> Response:
    zone = zone_of(request)
    settings = ctx_of(request).settings

    def load(s: Session) -> dict[str, Any]:
        out: dict[str, Any] = {"d": dashboard.load(s, me, zone)}
        if me.role == "reseller":
            out["balance"] = balances.mine(s, me).balance
        return out

    found = read(request, load)
    d: dashboard.Dashboard = found["d"]
    tz = ZoneInfo(zone)
    days = [(x.day.strftime("%m-%d"), x) for x in d.days]
    found["charts"] = {
        "activations": charts.bars(
            [(label, x.activations) for label, x in days],
            title="Activations per day, last 30 days", column="Activations",
        ),
        "sales": charts.bars(
            [(label, float(x.sales)) for label, x in days],
            title="Sales per day, last 30 days", column="Sales",
            show=lambda v: formats.money_text(v, settings),
        ),
        "online": charts.bars(
            [(h.at.astimezone(tz).strftime("%H:%M"), h.online) for h in d.hours],
            title="Sessions online, last 24 hours", column="Sessions", label_every=4,
        ),
    }  # fmt: skip
    base = BASE[me.role]
    return page(
        request, "dashboard.html", me, layout=LAYOUT[me.role], base=base,
        customers_url="/ui/customers" if me.role == "admin" else "/ui/desk",
        title="Dashboard", **found,
    )  # fmt: skip


@router.get("/ui/dashboard")
def admin_dashboard(request: Request, me: AdminUser) -> Response:
    return _dashboard(request, me)


@router.get("/ui/desk/dashboard")
def desk_dashboard(request: Request, me: ResellerUser) -> Response:
    return _dashboard(request, me)


# ---- online sessions -------------------------------------------------------------------


def _sessions(request: Request, me: Principal) -> Response:
    q = request.query_params
    filters = {"q": q.get("q", "").strip(), "router": q.get("router", "").strip()}
    if me.role != "admin":
        filters["router"] = ""
    try:
        number = max(1, int(q.get("page", "1")))
    except ValueError:
        number = 1

    def load(s: Session) -> dict[str, Any]:
        found = online.search(
            s, me, q=filters["q"] or None, router=filters["router"] or None,
            offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE,
        )  # fmt: skip
        names = routers.names(s, me) if me.role == "admin" else []
        return {"result": found, "router_choices": [("", "every router")] + [(n, n) for n in names]}

    found = read(request, load)
    total = found["result"].total
    base = BASE[me.role] + "/sessions"

    def link(n: int) -> str:
        return f"{base}?{urlencode({**{k: v for k, v in filters.items() if v}, 'page': n})}"

    return page(
        request, "sessions.html", me, layout=LAYOUT[me.role], base=base, filters=filters,
        number=number, pages=max(1, -(-total // PAGE_SIZE)),
        prev_url=link(number - 1) if number > 1 else None,
        next_url=link(number + 1) if number * PAGE_SIZE < total else None,
        customer_base="/ui/customers" if me.role == "admin" else "/ui/desk/customers",
        uptime=_uptime, title="Online now", **found,
    )  # fmt: skip


def _uptime(seconds: int) -> str:
    d, rest = divmod(int(seconds), 86400)
    h, rest = divmod(rest, 3600)
    m = rest // 60
    return f"{d}d {h}h {m:02d}m" if d else f"{h}h {m:02d}m"


def _disconnect(request: Request, me: Principal, radacct_id: int) -> Response:
    who = write(request, lambda s: effects.disconnect_session(s, me, radacct_id))
    flash(request, f"Disconnect sent to {who}'s session.")
    # Back to the list as it was (its search and page), never to another page or site.
    back = urlsplit(request.headers.get("referer") or "")
    base = BASE[me.role] + "/sessions"
    return redirect(request, base + (f"?{back.query}" if back.path == base and back.query else ""))


@router.get("/ui/sessions")
def admin_sessions(request: Request, me: AdminUser) -> Response:
    return _sessions(request, me)


@router.get("/ui/desk/sessions")
def desk_sessions(request: Request, me: ResellerUser) -> Response:
    return _sessions(request, me)


@router.post("/ui/sessions/{radacct_id}/disconnect")
def admin_disconnect(request: Request, me: AdminUser, radacct_id: int) -> Response:
    return _disconnect(request, me, radacct_id)


@router.post("/ui/desk/sessions/{radacct_id}/disconnect")
def desk_disconnect(request: Request, me: ResellerUser, radacct_id: int) -> Response:
    return _disconnect(request, me, radacct_id)


# ---- usage -----------------------------------------------------------------------------


def usage_context(s: Session, me: Principal, ref: str, settings_zone: str) -> dict[str, Any]:
    """A customer's usage this cycle against its threshold, and per day (a chart)."""
    c = access.customer(s, me, ref)
    u = fup.usage(s, c)
    per_day: list[tuple[str, float]] = []
    if u.cycle_start is not None and u.cycle_end is not None:
        tz = ZoneInfo(settings_zone)
        now = datetime.now(UTC)
        first = u.cycle_start.astimezone(tz).date()
        last = min(u.cycle_end, now).astimezone(tz).date()
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)][-62:]
        bounds = [datetime(x.year, x.month, x.day, tzinfo=tz).astimezone(UTC) for x in days]
        ends = bounds[1:] + [min(u.cycle_end, now)]
        daily = fup.daily_bytes(s, c, list(zip(bounds, ends, strict=True)), u.cycle_start)
        per_day = [(x.strftime("%m-%d"), float(n)) for x, n in zip(days, daily, strict=True)]
    percent = None
    if u.threshold:
        percent = min(100.0, 100.0 * u.used / u.threshold)
    return {
        "usage": u,
        "usage_percent": percent,
        "usage_text": _gib(u.used),
        "threshold_text": _gib(u.threshold) if u.threshold else None,
        "usage_chart": charts.bars(
            per_day, title="Usage per day this cycle", show=_gib, column="Used"
        )
        if per_day
        else None,  # fmt: skip
    }
