"""One error shape for every refusal: ``{"error": "field: reason", "field", "reason"}``.

The service layer's errors keep their status and message, so the API says exactly what the
CLI says. Request-shape errors (pydantic) and HTTP errors (unknown path, wrong method) are
put in the same shape; submitted values are never echoed back (they may be passwords).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException

from provisioner.errors import ProvisionerError

log = logging.getLogger(__name__)


def error_body(field: str | None, reason: str) -> dict[str, Any]:
    return {"error": f"{field}: {reason}" if field else reason, "field": field, "reason": reason}


def _provisioner_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProvisionerError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(
        {"error": str(exc), "field": exc.field, "reason": exc.reason},
        status_code=exc.status,
        headers=headers,
    )


def _request_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    fields = [_field(d["loc"]) for d in details]
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    # A value that fits no member of a union (``"50G" | 0..2**63-1``) has an error per
    # member; the one that is not "wrong type" says what was wrong with it.
    for d, f in zip(details, fields, strict=True):
        if f == fields[0] and not str(d["type"]).endswith("_type"):
            first = d
            break
    body = error_body(fields[0] if fields else None, str(first["msg"]))
    body["detail"] = details
    return JSONResponse(body, status_code=422)


def _field(loc: list[Any]) -> str | None:
    """The field an error's location names: ``contact``, ``routers.0``; without where it
    was (body, query …) or the union member pydantic tried (``constrained-int``)."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    if not parts:
        return None
    named = [str(parts[0])]
    for p in parts[1:]:
        if not isinstance(p, int):
            break
        named.append(str(p))
    return ".".join(named)


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        error_body(None, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # The service layer checks uniqueness first; this is a concurrent request that won a
    # race between that check and the commit. Nothing was written. One line, without the
    # statement and its parameters (they may hold passwords).
    assert isinstance(exc, IntegrityError)
    reason = (str(exc.orig).splitlines() or ["integrity error"])[0]
    log.warning(
        "%s %s refused, a concurrent change won: %s", request.method, request.url.path, reason
    )
    return JSONResponse(
        error_body(None, "conflicts with a concurrent change; nothing was written, try again"),
        status_code=409,
    )


def _unexpected(_request: Request, _exc: Exception) -> JSONResponse:
    # Starlette re-raises after this, so the server logs the traceback; the client gets
    # the usual shape and no internals.
    return JSONResponse(error_body(None, "internal error (see the daemon's log)"), status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ProvisionerError, _provisioner_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(Exception, _unexpected)
