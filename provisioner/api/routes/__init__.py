"""The HTTP API's routes, one module per resource."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from provisioner.api.routes import (
    activations,
    customers,
    health,
    invoices,
    masters,
    packages,
    plans,
    resellers,
    routers,
    tokens,
    webhooks,
)
from provisioner.read.models import ErrorOut, ValidationErrorOut

# What every operation behind a token may answer besides its own, in the one error shape
# (``api.errors``): documented, so a client knows them from the schema.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "the body is not what its content type says"},
    401: {"model": ErrorOut, "description": "no token, or one unknown, revoked or expired"},
    403: {"model": ErrorOut, "description": "this role may not do this"},
    404: {"model": ErrorOut, "description": "not found, or not this caller's to see"},
    409: {"model": ErrorOut, "description": "conflicts with what is stored (a name, a state)"},
    413: {"model": ErrorOut, "description": "the body is larger than its limit"},
    422: {"model": ValidationErrorOut, "description": "a field is invalid (named in `field`)"},
}

# Each included in the app itself (``api.create_app``), not under one router of all: FastAPI
# matches a request level by level, twice at each (about 20 us a request for that level).
# It tries each route in order: the busiest (activations, then customers) first, so the
# common request is not matched against every registry route before its own.
API_ROUTERS: list[tuple[APIRouter, dict[str, Any]]] = [
    (health.router, {}),
    *[
        (module.router, {"responses": ERRORS})
        for module in (
            activations,
            customers,
            masters,
            packages,
            resellers,
            routers,
            plans,
            invoices,
            webhooks,
            tokens,
        )
    ],
]

__all__ = ["API_ROUTERS"]
