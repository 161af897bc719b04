"""What every web page shares: templates, the caller behind the session cookie, CSRF,
forms that keep what was typed, and writes in a transaction of their own.

A page is thin: it reads through ``provisioner.read`` with the logged-in user's
``Principal`` and writes through the registry and services, exactly as the API does. A
refused write (``ProvisionerError``) is shown beside the field it names; nothing of it is
committed, because every write runs in its own transaction (``write``), rolled back when
it raises, before the page is rendered again.
"""

from __future__ import annotations

import hmac
import secrets as pysecrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from provisioner import users
from provisioner.auth import Principal
from provisioner.context import Context
from provisioner.db import reading, transaction
from provisioner.errors import Forbidden, ProvisionerError
from provisioner.web import formats

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
T = TypeVar("T")


def size_text(value: int | None) -> str:
    """A size as RouterOS writes it: 500G, 5M (powers of 1024), else bytes."""
    if not value:
        return ""
    for unit, size in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("k", 1024)):
        if value % size == 0:
            return f"{value // size}{unit}"
    return f"{value} bytes"


templates.env.filters["bytes"] = size_text
formats.install(templates.env)  # money, when, day, who: one format for every page

LOGIN = "login"  # session key: who logged in (``users.staff_login`` / ``customer_login``)
CSRF = "csrf"  # session key and form field of the CSRF token
CSRF_HEADER = "X-CSRF-Token"  # htmx sends it (``hx-headers`` on <body>)
STAFF_LOGIN = "/ui/login"
PORTAL_LOGIN = "/portal/login"


class LoginRequired(Exception):
    """No usable login for this area: answered with a redirect to its login page."""

    def __init__(self, login_url: str) -> None:
        super().__init__(login_url)
        self.login_url = login_url


class CsrfFailed(Forbidden):
    """A POST without this session's CSRF token (403)."""


def ctx_of(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


def zone_of(request: Request) -> str:
    """The time zone the pages show and take times in (storage stays UTC)."""
    return ctx_of(request).settings.timezone


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


# ---- the caller ------------------------------------------------------------------------


def current(request: Request) -> Principal | None:
    """The caller behind the session cookie, checked against the registry on every
    request (``users.principal_of``); a login that no longer stands is forgotten."""
    data = request.session.get(LOGIN)
    if not isinstance(data, dict):
        return None
    with reading(ctx_of(request).factory) as s:
        principal = users.principal_of(s, data)
    if principal is None:
        request.session.pop(LOGIN, None)
    return principal


def _staff(request: Request, *roles: str) -> Principal:
    p = current(request)
    if p is None or p.role == "customer":
        raise LoginRequired(STAFF_LOGIN)
    p.require(*roles)
    return p


def admin(request: Request) -> Principal:
    return _staff(request, "admin")


def reseller(request: Request) -> Principal:
    return _staff(request, "reseller")


def customer(request: Request) -> Principal:
    p = current(request)
    if p is None or p.role != "customer":
        raise LoginRequired(PORTAL_LOGIN)
    return p


AdminUser = Annotated[Principal, Depends(admin)]
ResellerUser = Annotated[Principal, Depends(reseller)]
CustomerUser = Annotated[Principal, Depends(customer)]


# ---- CSRF ------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """This session's CSRF token (made on first use)."""
    token = request.session.get(CSRF)
    if not isinstance(token, str) or not token:
        token = pysecrets.token_urlsafe(32)
        request.session[CSRF] = token
    return token


async def check_csrf(request: Request) -> None:
    """Every POST carries the session's token, as a form field or (htmx) a header."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = request.session.get(CSRF)
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        form = await request.form()
        value = form.get(CSRF)
        sent = value if isinstance(value, str) else None
    if not isinstance(expected, str) or not sent or not hmac.compare_digest(expected, sent):
        raise CsrfFailed(
            "the form is missing its security token, or it has expired: reload the page and "
            "try again"
        )


# ---- forms -----------------------------------------------------------------------------


async def form_data(request: Request) -> dict[str, str]:
    """The posted form as text fields (the CSRF token left out)."""
    form = await request.form()
    return {
        k: v.strip() if k != "password" else v
        for k, v in form.items()
        if isinstance(v, str) and k != CSRF
    }


Form = Annotated[dict[str, str], Depends(form_data)]


def errors_of(exc: ProvisionerError, fields: Iterable[str] = ()) -> dict[str, str]:
    """A refusal as {field: reason}, to show beside that field of the form; one about no
    field of the form (or none in particular) goes above it, under "_", whole."""
    if exc.field and exc.field in fields:
        return {exc.field: exc.reason}
    return {"_": str(exc)}


def write(request: Request, fn: Callable[[Session], T]) -> T:
    """Run a write in a transaction of its own: committed when ``fn`` returns, rolled
    back when it raises (the error then goes back to the form)."""
    with transaction(ctx_of(request).factory) as s:
        return fn(s)


def read(request: Request, fn: Callable[[Session], T]) -> T:
    """Run reads in one read-only transaction."""
    with reading(ctx_of(request).factory) as s:
        return fn(s)


# ---- responses -------------------------------------------------------------------------


FLASH = "flash"


def flash(request: Request, message: str, *, ok: bool = True) -> None:
    """A message for the next page this session sees (after a redirect)."""
    request.session[FLASH] = {"message": message, "ok": ok}


def page(
    request: Request,
    name: str,
    me: Principal | None,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A template with what every page needs: the caller, the CSRF token, the currency."""
    base = {
        "me": me,
        "csrf": csrf_token(request),
        "currency": ctx_of(request).settings.currency,
        "htmx": is_htmx(request),
        "path": request.url.path,
        "errors": {},
        "form": {},
        "flashed": request.session.pop(FLASH, None) if FLASH in request.session else None,
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


def redirect(request: Request, url: str) -> Response:
    """See other: a plain redirect, or for htmx a full-page redirect it follows."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def status_for(exc: ProvisionerError) -> int:
    """The status a page re-rendered after a refused write answers with."""
    return exc.status if exc.status >= 400 else 400
