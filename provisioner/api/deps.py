"""Request dependencies, made in one place: the context, the DB session and the caller.

``SessionDep`` is one session and one transaction per request: committed when the route
returns, rolled back when it raises, and always *before* the response is sent (scope
``function``), so a client never sees success for a write that did not commit. Routes and
the service layer never commit.

Every dependency and route that touches the database goes through ``CtxDep``, which first
takes one of the process's connection slots (``connection_slots``: as many as its pool
serves) and keeps it until the answer is sent. The wait for a slot is in the event loop,
holding nothing. Without it, a request's connection stayed checked out after its route
returned, while FastAPI waited for a thread to validate the answer; with more clients than
connections, every thread could be waiting for the pool while every connection waited for
a thread, until the pool gave up (``db_pool_timeout_seconds``, 30 s, then a 500).

``PrincipalDep`` reads ``Authorization: Bearer <token>`` in its own short transaction, so a
route that talks to routers for seconds (diff, sync) holds no database transaction while
it waits on the network; a verified token is then trusted for ``token_cache_seconds``
without a query (``auth.TokenCache``). Both are read-only for GET and HEAD requests: on SQLite a
read-only transaction runs beside the writer instead of queueing for the write lock. A
token's last use is recorded at most once a minute, in a short write transaction of its
own, so most requests write nothing for it.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from provisioner.auth import (
    Principal,
    TokenCache,
    Unauthorized,
    generation,
    record_use,
    verify,
)
from provisioner.context import Context
from provisioner.db import reading, transaction
from provisioner.errors import Forbidden
from provisioner.models import utcnow
from provisioner.read.paging import DEFAULT_LIMIT, MAX_LIMIT
from provisioner.schemas import Ref
from provisioner.validation import MAX_INT

log = logging.getLogger(__name__)


def connection_slots(ctx: Context) -> int:
    """Requests of one process that may use the database at once: what its pool serves
    the API (``Context.api_connections``; the scheduler's extra connections are for its
    syncs). On SQLite a read opens its connection as it begins, so a request may hold two
    at once (its session's and the token check's): half as many."""
    per_request = 2 if ctx.engine.dialect.name == "sqlite" else 1
    return max(1, ctx.api_connections // per_request)


# Per event loop, as anyio's own thread limiter (a test process runs many loops).
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)
_HELD = "provisioner.slots"  # the request's scope: the slot it holds, if any


async def get_context(request: Request) -> Context:
    """The context, once this request holds a connection slot, until its answer is sent
    (``SlotsReleased``: the session it may open is closed before that). A plain function
    rather than a ``yield`` dependency: FastAPI's exit stack and cancel scopes for one
    cost every request more than the rest of its dependencies."""
    ctx: Context = request.app.state.ctx
    held: list[asyncio.Semaphore] | None = request.scope.get(_HELD)
    if held is None:
        raise RuntimeError("get_context needs the app's SlotsReleased middleware")
    if not held:
        loop = asyncio.get_running_loop()
        slots = _slots.get(loop)
        if slots is None:
            slots = _slots[loop] = asyncio.Semaphore(connection_slots(ctx))
        await slots.acquire()
        held.append(slots)
    return ctx


class SlotsReleased:
    """Gives back the connection slot a request took (``get_context``) once its answer
    has been sent, or it failed."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: list[asyncio.Semaphore] = []
        scope[_HELD] = held
        try:
            await self.app(scope, receive, send)
        finally:
            for slots in held:
                slots.release()


CtxDep = Annotated[Context, Depends(get_context)]


READ_METHODS = {"GET", "HEAD"}


def get_session(ctx: CtxDep, request: Request) -> Iterator[Session]:
    """One transaction for the request: commit on success, roll back on any error; a
    read-only one for GET and HEAD."""
    begin = reading if request.method in READ_METHODS else transaction
    with begin(ctx.factory) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="an API token (`provisioner token`)")


USE_LOCK_WAIT_MS = 50


def _record_use(ctx: Context, token_id: int, now: datetime) -> None:
    """Record a token's use in a write of its own that waits at most ``USE_LOCK_WAIT_MS``
    for a lock: while another transaction writes (SQLite: any; PostgreSQL: that token's
    row) it is skipped, and the token's next request tries again. Never refuses a request."""
    try:
        with ctx.engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            raw: Any = conn.connection.driver_connection  # before BEGIN: the wait is per connection
            if sqlite:
                waited = raw.execute("PRAGMA busy_timeout").fetchone()[0]
                raw.execute(f"PRAGMA busy_timeout={USE_LOCK_WAIT_MS}")
            try:
                with conn.begin():
                    if not sqlite:
                        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{USE_LOCK_WAIT_MS}ms'")
                    record_use(conn, token_id, now=now)
            finally:
                if sqlite:
                    raw.execute(f"PRAGMA busy_timeout={int(waited)}")
    except SQLAlchemyError as exc:  # bookkeeping only
        log.debug("token %s: its use was not recorded this time: %s", token_id, exc)


def _cache(app: Any, ctx: Context) -> TokenCache:
    """The app's token cache (made with the app's first authenticated request)."""
    cache: TokenCache | None = getattr(app.state, "tokens", None)
    if cache is None:
        cache = app.state.tokens = TokenCache(ctx.settings.token_cache_seconds)
    return cache


def check_token(app: Any, ctx: Context, token: str, now: datetime | None = None) -> Principal:
    """Verify ``token`` in its own short read and cache the caller; Unauthorized (and the
    token forgotten by the cache) when it is refused."""
    now = now or utcnow()
    cache = _cache(app, ctx)
    seen = generation()
    try:
        with reading(ctx.factory) as session:
            principal, due, expires_at = verify(session, token, now=now)
    except Unauthorized:
        cache.drop(token)
        raise
    if due is not None:
        _record_use(ctx, due, now)
    cache.put(token, principal, expires_at, seen)
    return principal


async def get_principal(
    ctx: CtxDep,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller behind the bearer token: 401 when the token is missing, unknown, revoked
    or expired, or its owner was removed; 403 for anything but a read when its customer is
    suspended (it may look at its account, not buy)."""
    principal = await _caller(ctx, request, credentials)
    if principal.read_only and request.method not in READ_METHODS:
        raise Forbidden("this account is suspended; contact your provider")
    return principal


async def get_payer(
    ctx: CtxDep,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """``get_principal`` that lets a suspended customer through: paying what it owes is
    how a customer suspended as unpaid gets back online (``invoices.pay`` refuses the
    other suspensions).

    Async, as every dependency that does not wait on the database: a token the cache
    holds costs no thread hop (FastAPI runs a sync dependency on a thread of its own);
    one it must check is checked on a thread."""
    return await _caller(ctx, request, credentials)


async def _caller(
    ctx: Context, request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The caller behind the bearer token (both dependencies' work: one calls it, not
    the other, as each dependency level costs FastAPI's resolution on every request)."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    now = utcnow()
    token = credentials.credentials
    principal, renew = _cache(request.app, ctx).lookup(token, now)
    if principal is None:
        return await _checked(request.app, ctx, token, now)
    if renew:
        _renew_beside(request.app, ctx, token, now)
    return principal


# Checks in progress, per event loop: (app, token) -> the check's future.
_checking: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[int, str], asyncio.Future[Principal]]
] = weakref.WeakKeyDictionary()


async def _checked(app: Any, ctx: Context, token: str, now: datetime) -> Principal:
    """``check_token`` on a thread, once for all the requests that find ``token`` missing
    from the cache at the same time: a client's burst after an idle spell (its entry
    gone) waited for as many checks as requests, each a thread and a transaction."""
    loop = asyncio.get_running_loop()
    pending = _checking.setdefault(loop, {})
    key = (id(app), token)
    check = pending.get(key)
    if check is None:
        check = pending[key] = asyncio.ensure_future(
            anyio.to_thread.run_sync(check_token, app, ctx, token, now)
        )
        check.add_done_callback(lambda done: _checked_done(pending, key, done))
    # A cancelled request leaves the check to the others waiting for it.
    return await asyncio.shield(check)


def _checked_done(
    pending: dict[tuple[int, str], asyncio.Future[Principal]],
    key: tuple[int, str],
    done: asyncio.Future[Principal],
) -> None:
    pending.pop(key, None)
    if not done.cancelled():
        done.exception()  # retrieved: a refusal nobody waited for is not logged as lost


def _renew_beside(app: Any, ctx: Context, token: str, now: datetime) -> None:
    """Check ``token`` again on a thread beside this request, which its cached entry still
    covers (``TokenCache``). Made in the request, the check put a thread hop and a
    transaction into one request per token and worker every ``token_cache_seconds / 2``:
    at 500 activations/s, a steady share of the slowest answers."""
    asyncio.get_running_loop().run_in_executor(None, _renew, app, ctx, token, now)


def _renew(app: Any, ctx: Context, token: str, now: datetime) -> None:
    try:
        check_token(app, ctx, token, now)
    except Unauthorized:
        pass  # forgotten (``check_token``): the token's next request is refused
    except Exception:  # noqa: BLE001 - the entry lapses at its end and is checked then
        log.warning("checking an API token again failed", exc_info=True)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
PayerDep = Annotated[Principal, Depends(get_payer)]


def require(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets only these roles through (403 for the others)."""

    async def dependency(principal: PrincipalDep) -> Principal:
        principal.require(*roles)
        return principal

    dependency.__name__ = f"require_{'_or_'.join(roles)}"
    return dependency


admin_only = require("admin")
AdminDep = Annotated[Principal, Depends(admin_only)]
ResellerDep = Annotated[Principal, Depends(require("reseller"))]
CustomerDep = Annotated[Principal, Depends(require("customer"))]
# Admins and resellers; a reseller is then held to its own rows by ``access``.
StaffDep = Annotated[Principal, Depends(require("admin", "reseller"))]


@dataclass(frozen=True)
class Paging:
    """``limit`` and ``offset`` of a list endpoint: every list answers a ``Page``."""

    limit: int
    offset: int


async def get_paging(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_INT, description="items to skip")] = 0,
) -> Paging:
    return Paging(limit=limit, offset=offset)


PagingDep = Annotated[Paging, Depends(get_paging)]
Search = Annotated[Ref | None, Query(description="names that contain this (any case)")]
