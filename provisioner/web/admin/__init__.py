"""The admin's panel (``/ui``): Your Packages, master packages, resellers, customers,
routers with dry runs and syncs, activations, recharge cards, the audit log, webhooks
and events. One module
per area, as the API's routes are; admins only (a reseller is sent to its desk)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from provisioner.http_threads import Route
from provisioner.web.admin import (
    activity,
    customers,
    logins,
    masters,
    packages,
    resellers,
    routers,
    webhooks,
)
from provisioner.web.common import STAFF_LOGIN, current, redirect

router = APIRouter(route_class=Route, include_in_schema=False)


@router.get("/ui")
@router.get("/ui/")
def home(request: Request) -> Response:
    """Where a login lands: the admin's dashboard, the reseller's desk."""
    me = current(request)
    if me is None or me.role == "customer":
        return redirect(request, STAFF_LOGIN)
    return redirect(request, "/ui/desk" if me.role == "reseller" else "/ui/dashboard")


for module in (packages, masters, resellers, customers, routers, activity, webhooks, logins):
    router.include_router(module.router)

__all__ = ["router"]
