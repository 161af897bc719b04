"""Request dependencies, made in one place: the context, the DB session and the caller.

``SessionDep`` is one session and one transaction per request: committed when the route
returns, rolled back when it raises, and always *before* the response is sent (scope
``function``), so a client never sees success for a write that did not commit. Routes and
the service layer never commit.

``PrincipalDep`` reads ``Authorization: Bearer <token>`` in its own short transaction, so a
route that talks to routers for seconds (diff, sync) holds no database transaction while
it waits on the network. Both are read-only for GET and HEAD requests: on SQLite a
read-only transaction runs beside the writer instead of queueing for the write lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from provisioner.auth import Principal, authenticate
from provisioner.context import Context
from provisioner.db import reading, transaction
from provisioner.errors import ProvisionerError


class Unauthorized(ProvisionerError):
    """No usable bearer token; answered with 401 and ``WWW-Authenticate: Bearer``."""

    status = 401


def get_context(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


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


def get_principal(
    ctx: CtxDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller behind the bearer token; 401 when the token is missing or unknown."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    with reading(ctx.factory) as session:
        principal = authenticate(session, credentials.credentials)
    if principal is None:
        raise Unauthorized("the bearer token is not valid")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*roles: str) -> Callable[[Principal], Principal]:
    """A dependency that lets only these roles through (403 for the others)."""

    def dependency(principal: PrincipalDep) -> Principal:
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
