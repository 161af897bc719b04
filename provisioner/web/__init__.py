"""The web panels, served by the daemon beside the API: the admin's panel and the
reseller's desk under ``/ui``, the customer's self-service portal under ``/portal``, and
the API docs at ``/docs`` with every asset served from this package (no CDN).

Pages are server-rendered (Jinja2, Pico CSS) and work with JavaScript off; htmx (vendored
in ``static/``) makes some of them partial: search as you type, paging, dry-run plans,
activation status. A page is a face like an API route: it reads through
``provisioner.read`` with the logged-in user's ``Principal`` and writes through the
registry and services, so every rule is the API's.

Logins are session cookies (signed, HttpOnly, SameSite=Lax, Secure on HTTPS) and every
POST carries the session's CSRF token (``common.check_csrf``).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from provisioner import secrets
from provisioner.errors import ProvisionerError
from provisioner.web import admin, auth, dashboard, desk, docs, invoices, portal
from provisioner.web.common import HERE, LoginRequired, current, is_htmx, page, redirect

WEB_PREFIXES = ("/ui", "/portal")
SESSION_COOKIE = "provisioner_session"
SESSION_HOURS = 12


def _is_web(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in WEB_PREFIXES)


class WebSessions:
    """Session cookies for the web pages only (the API keeps to bearer tokens): signed
    with a key derived from the daemon's secret key, HttpOnly, SameSite=Lax, and Secure
    whenever the request came over HTTPS (directly, or through a proxy uvicorn trusts)."""

    def __init__(self, app: ASGIApp, secret_key: str) -> None:
        self.app = app
        kw: dict[str, Any] = {
            "secret_key": secret_key,
            "session_cookie": SESSION_COOKIE,
            "max_age": SESSION_HOURS * 3600,
            "same_site": "lax",
        }
        self.plain = SessionMiddleware(app, https_only=False, **kw)
        self.tls = SessionMiddleware(app, https_only=True, **kw)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_web(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        chosen = self.tls if scope.get("scheme") == "https" else self.plain
        await chosen(scope, receive, send)


def _html_errors(app: FastAPI) -> None:
    """Web pages answer errors with pages (and a login redirect); the API keeps JSON."""
    api_error = app.exception_handlers[ProvisionerError]
    api_http = app.exception_handlers[HTTPException]
    api_invalid = app.exception_handlers[RequestValidationError]
    api_unexpected = app.exception_handlers[Exception]

    def error_page(request: Request, status: int, message: str) -> Response:
        try:
            me = current(request)
        except Exception:  # noqa: BLE001 - an error page must not fail on the caller
            me = None
        headers = {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"} if is_htmx(request) else None
        template = "_flash.html" if is_htmx(request) else "error.html"
        response = page(
            request, template, me, status=status, message=_friendly(message), ok=False, code=status
        )
        if headers:
            response.headers.update(headers)
        return response

    async def provisioner_error(request: Request, exc: Exception) -> Response:
        if not _is_web(request.url.path):
            return await _maybe_await(api_error(request, exc))
        assert isinstance(exc, ProvisionerError)
        return error_page(request, exc.status, str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        if not _is_web(request.url.path):
            return await _maybe_await(api_http(request, exc))
        assert isinstance(exc, HTTPException)
        message = {404: "There is no such page."}.get(exc.status_code, str(exc.detail))
        return error_page(request, exc.status_code, message)

    async def bad_request(request: Request, exc: Exception) -> Response:
        # A web URL with a malformed part (an id that is not a number) names no page.
        if not _is_web(request.url.path):
            return await _maybe_await(api_invalid(request, exc))
        return error_page(request, 404, "There is no such page.")

    async def unexpected(request: Request, exc: Exception) -> Response:
        # Starlette re-raises after this, so the daemon logs the traceback.
        if not _is_web(request.url.path):
            return await _maybe_await(api_unexpected(request, exc))
        return error_page(request, 500, "Something went wrong on our side (see the daemon's log).")

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return redirect(request, exc.login_url)

    app.add_exception_handler(ProvisionerError, provisioner_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(Exception, unexpected)


_REFERENCE = re.compile(r"^no (?P<kind>[\w ]+?) named 'id:[^']*'.*$")


def _friendly(message: str) -> str:
    """A page's "not found" in words, never the API's reference syntax ('id:9')."""
    m = _REFERENCE.match(message)
    if m:
        return f"There is no such {m['kind']} here: it does not exist, or it is not yours."
    return message


async def _maybe_await(value: Any) -> Any:
    if hasattr(value, "__await__"):
        return await value
    return value


def install(app: FastAPI) -> None:
    """Mount the panels, the portal, their static files and the offline API docs."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    docs.install(app)
    for module in (auth, admin, desk, portal, dashboard, invoices):
        app.include_router(module.router)
    _html_errors(app)
    app.add_middleware(WebSessions, secret_key=secrets.keyed_digest("web session cookie"))
