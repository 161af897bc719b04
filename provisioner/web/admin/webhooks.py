"""Webhooks and reminders in the admin's panel: endpoints (add: the secret shown once;
rotate, test, enable/disable, remove), each endpoint's deliveries with every try and a
redelivery, the latest events, and the reminders sent to customers. Writes go through
``provisioner.webhooks`` as the API's do."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import events, webhooks
from provisioner.errors import ProvisionerError
from provisioner.http_threads import Route
from provisioner.models import Event, ReminderMessage
from provisioner.web.common import (
    AdminUser,
    Form,
    check_csrf,
    ctx_of,
    errors_of,
    flash,
    page,
    read,
    redirect,
    status_for,
    write,
)

router = APIRouter(route_class=Route, prefix="/ui", dependencies=[Depends(check_csrf)])
FIELDS = ("url", "events", "description", "concurrency", "timeout_seconds")


def _list(request: Request, me: Any, **context: Any) -> Response:
    def load(s: Session) -> dict[str, Any]:
        return {"endpoints": webhooks.endpoints(s, me), "types": list(events.TYPES)}

    return page(request, "admin/webhooks.html", me, **read(request, load), **context)


@router.get("/webhooks")
def list_endpoints(request: Request, me: AdminUser) -> Response:
    return _list(request, me)


def _number(form: dict[str, str], name: str, default: float) -> float:
    from provisioner.errors import ValidationError

    raw = form.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ValidationError("must be a number", field=name) from None


@router.post("/webhooks")
def add_endpoint(request: Request, me: AdminUser, form: Form) -> Response:
    types = [t.strip() for t in form.get("events", "").replace(",", " ").split() if t.strip()]
    def create(s: Session) -> tuple[int, str]:
        ep, secret = webhooks.create(
            s, me, form.get("url", ""), types, description=form.get("description", ""),
            concurrency=max(1, min(64, int(_number(form, "concurrency", 4)))),
            timeout_seconds=max(0.1, min(300.0, _number(form, "timeout_seconds", 10.0))),
            restrict_admins=ctx_of(request).settings.webhook_restrict_admins,
        )  # fmt: skip
        return ep.id, secret

    try:
        ep_id, secret = write(request, create)
    except ProvisionerError as exc:
        return _list(request, me, form=form, errors=errors_of(exc, FIELDS),
                     status=status_for(exc))  # fmt: skip
    return _list(request, me, secret=secret, secret_for=ep_id)


def _detail(request: Request, me: Any, endpoint_id: int, **context: Any) -> Response:
    def load(s: Session) -> dict[str, Any]:
        ep = webhooks.endpoint(s, me, endpoint_id)
        rows = webhooks.deliveries(s, me, endpoint_id, limit=50)
        return {
            "endpoint": ep,
            "deliveries": [(d, e, webhooks.attempts(s, d.id)) for d, e in rows],
        }

    return page(request, "admin/webhook.html", me, **read(request, load), **context)


@router.get("/webhooks/{endpoint_id}")
def show_endpoint(request: Request, me: AdminUser, endpoint_id: int) -> Response:
    return _detail(request, me, endpoint_id)


@router.post("/webhooks/{endpoint_id}/rotate")
def rotate(request: Request, me: AdminUser, endpoint_id: int) -> Response:
    secret = write(request, lambda s: webhooks.rotate(s, me, endpoint_id)[1])
    return _detail(request, me, endpoint_id, secret=secret)


@router.post("/webhooks/{endpoint_id}/test")
def send_test(request: Request, me: AdminUser, endpoint_id: int) -> Response:
    write(request, lambda s: webhooks.send_test(s, me, endpoint_id))
    flash(request, "A webhook.test event is on its way.")
    return redirect(request, f"/ui/webhooks/{endpoint_id}")


@router.post("/webhooks/{endpoint_id}/enabled")
def set_enabled(request: Request, me: AdminUser, endpoint_id: int, form: Form) -> Response:
    on = form.get("enabled") == "1"
    write(request, lambda s: webhooks.edit(s, me, endpoint_id, enabled=on))
    flash(request, "Endpoint enabled." if on else "Endpoint disabled.")
    return redirect(request, f"/ui/webhooks/{endpoint_id}")


@router.post("/webhooks/{endpoint_id}/remove")
def remove(request: Request, me: AdminUser, endpoint_id: int) -> Response:
    write(request, lambda s: webhooks.remove(s, me, endpoint_id))
    flash(request, f"Endpoint {endpoint_id} removed.")
    return redirect(request, "/ui/webhooks")


@router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver")
def redeliver(request: Request, me: AdminUser, endpoint_id: int, delivery_id: int) -> Response:
    write(request, lambda s: webhooks.redeliver(s, me, endpoint_id, delivery_id))
    flash(request, f"Delivery {delivery_id} will be sent again now.")
    return redirect(request, f"/ui/webhooks/{endpoint_id}")


@router.get("/events")
def list_events(request: Request, me: AdminUser) -> Response:
    def load(s: Session) -> dict[str, Any]:
        rows = list(s.scalars(select(Event).order_by(Event.id.desc()).limit(100)))
        msgs = list(s.scalars(select(ReminderMessage).order_by(ReminderMessage.id.desc())
                              .limit(100)))  # fmt: skip
        return {"events": rows, "messages": msgs}

    return page(request, "admin/events.html", me, **read(request, load))
