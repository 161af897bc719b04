"""Logging in and out of the panels (``/ui/login``) and the portal (``/portal/login``).

Staff (admins, resellers) log in with a web user (``provisioner user add``); customers
with their PPPoE/hotspot username and password. A login starts a fresh session (a new
CSRF token, nothing carried over from before). Logging out clears it.

Failed logins are counted in memory, per username and per client address, over a
window of ``WINDOW_SECONDS``: after ``USER_LIMIT`` failures for one username, or
``ADDRESS_LIMIT`` from one address, further attempts are refused (429) until the window
has passed since the first of them, without checking the password. A success clears the
username's count. The counts are per daemon process and are lost on restart; that is
enough to make guessing slow, which is all it is for.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from provisioner import users
from provisioner.db import transaction
from provisioner.http_threads import Route
from provisioner.web.common import (
    LOGIN,
    PORTAL_LOGIN,
    STAFF_LOGIN,
    Form,
    check_csrf,
    csrf_token,
    ctx_of,
    current,
    page,
    read,
    redirect,
)

USER_LIMIT = 5
ADDRESS_LIMIT = 20
WINDOW_SECONDS = 15 * 60
WRONG = "wrong username or password"

router = APIRouter(route_class=Route, include_in_schema=False, dependencies=[Depends(check_csrf)])


@dataclass
class Throttle:
    """Failures per key within a window (in memory, thread-safe, bounded)."""

    window: float = WINDOW_SECONDS
    _seen: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._seen.get(key, []) if t > now - self.window]
        if times:
            self._seen[key] = times
        else:
            self._seen.pop(key, None)
        return times

    def wait(self, key: str, limit: int, now: float | None = None) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent(key, now)
            return times[0] + self.window - now if len(times) >= limit else 0.0

    def failed(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._seen) > 10_000:  # forget the idle ones rather than grow
                for k in list(self._seen):
                    self._recent(k, now)
            self._seen.setdefault(key, []).append(now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)


def throttle(request: Request) -> Throttle:
    t = getattr(request.app.state, "login_throttle", None)
    if t is None:
        t = request.app.state.login_throttle = Throttle()
    return t  # type: ignore[no-any-return]


def _login(request: Request, form: dict[str, str], kind: str, template: str) -> Response:
    """Check the credentials (under the throttle), start a fresh session, or say why not."""
    username = form.get("username", "")
    password = form.get("password", "")
    t = throttle(request)
    client = request.client.host if request.client else "?"
    keys = ((f"{kind}:{username.lower()}", USER_LIMIT), (f"address:{client}", ADDRESS_LIMIT))
    wait = max(t.wait(k, limit) for k, limit in keys)
    if wait:
        minutes = max(1, round(wait / 60))
        message = f"too many failed logins; try again in {minutes} minute{'s' * (minutes > 1)}"
        return page(
            request, template, None, status=429, form={"username": username},
            errors={"password": message},
        )  # fmt: skip
    check = users.staff_login if kind == "staff" else users.customer_login
    data = read(request, lambda s: check(s, username, password)) if username and password else None
    if data is None:
        for k, _ in keys:
            t.failed(k)
        return page(
            request, template, None, status=401, form={"username": username},
            errors={"password": WRONG},
        )  # fmt: skip
    t.clear(keys[0][0])
    with transaction(ctx_of(request).factory) as s:
        users.record_login(s, data)
    request.session.clear()  # a fresh session: nothing from before the login carries over
    request.session[LOGIN] = data
    csrf_token(request)
    return redirect(request, "/ui/" if kind == "staff" else "/portal/")


@router.get("/ui/login")
def staff_login_page(request: Request) -> Response:
    me = current(request)
    if me is not None and me.role != "customer":
        return redirect(request, "/ui/")
    return page(request, "login.html", None)


@router.post("/ui/login")
def staff_login(request: Request, form: Form) -> Response:
    return _login(request, form, "staff", "login.html")


@router.get("/portal/login")
def portal_login_page(request: Request) -> Response:
    me = current(request)
    if me is not None and me.role == "customer":
        return redirect(request, "/portal/")
    return page(request, "portal/login.html", None)


@router.post("/portal/login")
def portal_login(request: Request, form: Form) -> Response:
    return _login(request, form, "customer", "portal/login.html")


def _logout(request: Request, to: str) -> Response:
    request.session.clear()
    return redirect(request, to)


@router.post("/ui/logout")
def staff_logout(request: Request) -> Response:
    return _logout(request, STAFF_LOGIN)


@router.post("/portal/logout")
def portal_logout(request: Request) -> Response:
    return _logout(request, PORTAL_LOGIN)
