"""The HTTP API's routes, one module per resource."""

from __future__ import annotations

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
)

api_router = APIRouter()
for module in (
    health,
    masters,
    packages,
    resellers,
    routers,
    customers,
    plans,
    activations,
    invoices,
):
    api_router.include_router(module.router)
api_router.include_router(tokens.router)

__all__ = ["api_router"]
