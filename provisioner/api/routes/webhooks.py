"""Events out: webhook endpoints and their deliveries, the event log, customers'
reminder contacts and the reminders sent (``provisioner.webhooks``, ``reminders``).

Admins manage every endpoint (and see every event); an operator manages its own, which
receive its subtree's events only. A secret is in the answer of a create or a rotation
only; it is stored encrypted. Event types and bodies: ``GET /api/v1/events/schema``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from provisioner import access, events, validation, webhooks
from provisioner.api.deps import AdminDep, CtxDep, SessionDep, StaffDep
from provisioner.errors import ValidationError
from provisioner.http_threads import Route
from provisioner.models import (
    BalanceAlert,
    CustomerContact,
    Event,
    ReminderMessage,
    WebhookEndpoint,
)
from provisioner.schemas import Amount, Ref, text
from provisioner.validation import MAX_INT

Channel = text(16)  # a channel name of reminder_urls (customer_contacts.channel)

router = APIRouter(route_class=Route, tags=["webhooks"])
Id = Annotated[int, Path(ge=1, le=MAX_INT)]
Url = text(2048)
Type = text(40)
SCHEMA = FilePath(__file__).resolve().parents[2] / "events.schema.json"


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url = Field(description="where events are POSTed (http or https)")
    events: list[Type] = Field(description="event types, or ['*'] for all", max_length=64)
    description: text(256) = ""  # type: ignore[valid-type]
    concurrency: int = Field(4, ge=1, le=64, description="deliveries to it at once")
    timeout_seconds: float = Field(10.0, gt=0, le=300, description="per try")
    kind: Literal["webhook", "other"] = Field(
        "webhook", description="other (admins): the other adapter's, sent other.action only"
    )


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: list[Type] | None = Field(None, max_length=64)
    description: text(256) | None = None  # type: ignore[valid-type]
    concurrency: int | None = Field(None, ge=1, le=64)
    timeout_seconds: float | None = Field(None, gt=0, le=300)
    enabled: bool | None = Field(None, description="true re-enables a disabled endpoint")


class EndpointOut(BaseModel):
    id: int
    url: str
    events: list[str]
    description: str
    kind: str
    owner: str = Field(description="admin, or reseller:N (its subtree's events)")
    enabled: bool
    concurrency: int
    timeout_seconds: float
    failing_since: datetime | None
    disabled_at: datetime | None
    created_at: datetime


class EndpointCreatedOut(EndpointOut):
    secret: str = Field(description="whsec_…: shown in this answer only")


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    event_type: str
    webhook_id: str = Field(description="the webhook-id header, the same on every try")
    status: Literal["pending", "running", "delivered", "failed"]
    attempts: int
    last_status: int | None = Field(description="HTTP status of the last try")
    last_response_ms: int | None
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None


class AttemptOut(BaseModel):
    at: datetime
    status_code: int | None
    response_ms: int
    error: str | None


class DeliveryDetailOut(DeliveryOut):
    log: list[AttemptOut]


class EventOut(BaseModel):
    id: str
    seq: int = Field(description="its order; ?after=seq lists the ones after it")
    type: str
    at: datetime
    data: dict[str, Any]


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: text(254) | None = None  # type: ignore[valid-type]
    phone: text(32) | None = None  # type: ignore[valid-type]
    channel: Channel | None = Field(
        None, description="a channel of reminder_urls; else email first"
    )
    language: Literal["en", "bn"] = "en"
    opt_out: bool = False


class ContactOut(ContactIn):
    customer: str


class MessageOut(BaseModel):
    id: int
    event_type: str
    customer_id: int
    channel: str | None
    language: str
    status: Literal["pending", "running", "sent", "skipped", "failed"]
    attempts: int
    last_error: str | None
    text: str | None
    created_at: datetime
    sent_at: datetime | None


def endpoint_view(ep: WebhookEndpoint) -> dict[str, Any]:
    return dict(
        id=ep.id, url=ep.url, events=ep.events, description=ep.description, kind=ep.kind,
        owner="admin" if ep.reseller_id is None else f"reseller:{ep.reseller_id}",
        enabled=ep.enabled, concurrency=ep.concurrency, timeout_seconds=ep.timeout_seconds,
        failing_since=ep.failing_since, disabled_at=ep.disabled_at, created_at=ep.created_at,
    )  # fmt: skip


def delivery_view(d: Any, e: Event) -> dict[str, Any]:
    return dict(
        id=d.id, event_id=e.uid, event_type=e.type, webhook_id=d.msg_id, status=d.status,
        attempts=d.attempts, last_status=d.last_status, last_response_ms=d.last_ms,
        last_error=d.last_error, next_attempt_at=d.next_attempt_at, created_at=d.created_at,
        delivered_at=d.delivered_at,
    )  # fmt: skip


@router.get("/webhooks")
def list_endpoints(session: SessionDep, who: StaffDep) -> list[EndpointOut]:
    """The endpoints this caller manages (an admin: all)."""
    return [EndpointOut(**endpoint_view(ep)) for ep in webhooks.endpoints(session, who)]


@router.post("/webhooks", status_code=201)
def create_endpoint(
    body: EndpointCreate, session: SessionDep, who: StaffDep, ctx: CtxDep
) -> EndpointCreatedOut:
    """Register an endpoint; its ``secret`` is in this answer only. An operator's ``url``
    must not reach an internal address (422)."""
    ep, secret = webhooks.create(
        session, who, body.url, body.events, description=body.description,
        concurrency=body.concurrency, timeout_seconds=body.timeout_seconds, kind=body.kind,
        restrict_admins=ctx.settings.webhook_restrict_admins,
    )  # fmt: skip
    return EndpointCreatedOut(**endpoint_view(ep), secret=secret)


@router.get("/webhooks/{endpoint_id}")
def get_endpoint(endpoint_id: Id, session: SessionDep, who: StaffDep) -> EndpointOut:
    return EndpointOut(**endpoint_view(webhooks.endpoint(session, who, endpoint_id)))


@router.patch("/webhooks/{endpoint_id}")
def edit_endpoint(
    endpoint_id: Id, body: EndpointUpdate, session: SessionDep, who: StaffDep, ctx: CtxDep
) -> EndpointOut:
    """Change what is given; ``enabled: true`` brings a disabled endpoint back."""
    ep = webhooks.edit(session, who, endpoint_id, **body.model_dump(),
                       restrict_admins=ctx.settings.webhook_restrict_admins)  # fmt: skip
    return EndpointOut(**endpoint_view(ep))


@router.post("/webhooks/{endpoint_id}/rotate")
def rotate_secret(endpoint_id: Id, session: SessionDep, who: StaffDep) -> EndpointCreatedOut:
    """A new secret (in this answer only): every delivery from now on is signed with it."""
    ep, secret = webhooks.rotate(session, who, endpoint_id)
    return EndpointCreatedOut(**endpoint_view(ep), secret=secret)


@router.delete("/webhooks/{endpoint_id}", status_code=204)
def remove_endpoint(endpoint_id: Id, session: SessionDep, who: StaffDep) -> None:
    """Remove an endpoint and its delivery log."""
    webhooks.remove(session, who, endpoint_id)


@router.post("/webhooks/{endpoint_id}/test", status_code=202)
def send_test(endpoint_id: Id, session: SessionDep, who: StaffDep) -> DeliveryOut:
    """Queue a ``webhook.test`` event to this endpoint alone."""
    d = webhooks.send_test(session, who, endpoint_id)
    e = session.get(Event, d.event_id)
    assert e is not None
    return DeliveryOut(**delivery_view(d, e))


@router.get("/webhooks/{endpoint_id}/deliveries")
def list_deliveries(
    endpoint_id: Id,
    session: SessionDep,
    who: StaffDep,
    status: Annotated[
        Literal["pending", "running", "delivered", "failed"] | None, Query()
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    """Its deliveries, newest first: status, attempts, the last response's status and time."""
    rows = webhooks.deliveries(session, who, endpoint_id, status=status, limit=limit)
    return [DeliveryOut(**delivery_view(d, e)) for d, e in rows]


@router.get("/webhooks/{endpoint_id}/deliveries/{delivery_id}")
def get_delivery(
    endpoint_id: Id, delivery_id: Id, session: SessionDep, who: StaffDep
) -> DeliveryDetailOut:
    """One delivery with every try (status, response time, error)."""
    d = webhooks.delivery(session, who, endpoint_id, delivery_id)
    e = session.get(Event, d.event_id)
    assert e is not None
    log = [AttemptOut(at=a.at, status_code=a.status_code, response_ms=a.response_ms,
                      error=a.error) for a in webhooks.attempts(session, d.id)]  # fmt: skip
    return DeliveryDetailOut(**delivery_view(d, e), log=log)


@router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver", status_code=202)
def redeliver(endpoint_id: Id, delivery_id: Id, session: SessionDep, who: StaffDep) -> DeliveryOut:
    """Send it again now, under the same webhook-id."""
    d = webhooks.redeliver(session, who, endpoint_id, delivery_id)
    e = session.get(Event, d.event_id)
    assert e is not None
    return DeliveryOut(**delivery_view(d, e))


# ---- events ------------------------------------------------------------------------------


@router.get("/events")
def list_events(
    session: SessionDep,
    who: StaffDep,
    after: Annotated[int, Query(ge=0, le=MAX_INT, description="seq of the last one seen")] = 0,
    type: Annotated[Type | None, Query(description="one event type")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EventOut]:
    """Events in order (oldest first past ``after``); an operator sees its subtree's."""
    q = select(Event).where(Event.id > after).order_by(Event.id).limit(limit)
    if type is not None:
        if type not in events.TYPES:
            raise ValidationError(f"unknown event type {type!r}", field="type")
        q = q.where(Event.type == type)
    if who.role == "reseller":
        me = access.own_reseller(session, who).id
        q = q.where(Event.reseller_id.in_(access.subtree(me)))
    return [EventOut(id=e.uid, seq=e.id, type=e.type, at=e.at, data=e.body)
            for e in session.scalars(q)]  # fmt: skip


@router.get("/events/schema")
def events_schema(who: StaffDep) -> dict[str, Any]:
    """The JSON Schema of every event type's body (``provisioner/events.schema.json``)."""
    return json.loads(SCHEMA.read_text())  # type: ignore[no-any-return]


# ---- balance.low ------------------------------------------------------------------------


class BalanceAlertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: Amount | None = Field(
        description="balance.low when the balance falls below this (null: no alert)"
    )


class BalanceAlertOut(BaseModel):
    reseller: str
    threshold: str | None
    alerted: bool


@router.put("/resellers/{name}/balance-alert")
def set_balance_alert(
    name: Ref, body: BalanceAlertIn, session: SessionDep, who: StaffDep
) -> BalanceAlertOut:
    """The operator's low-balance threshold: an operator sets its own (``me``) or one
    below it, an admin any; a ``balance.low`` event each time the balance falls below."""
    if who.role == "reseller" and name == "me":
        r = access.own_reseller(session, who)
    else:
        r = access.reseller(session, who, name)
    row = session.get(BalanceAlert, r.id)
    if body.threshold is None:
        if row is not None:
            session.delete(row)
        return BalanceAlertOut(reseller=r.name, threshold=None, alerted=False)
    amount = validation.price("threshold", body.threshold)
    if row is None:
        row = BalanceAlert(reseller_id=r.id, threshold=amount, alerted=False)
        session.add(row)
    else:
        row.threshold, row.alerted = amount, False
    session.flush()
    return BalanceAlertOut(reseller=r.name, threshold=str(amount), alerted=row.alerted)


# ---- reminders ----------------------------------------------------------------------------


@router.put("/customers/{username}/contact")
def set_contact(username: Ref, body: ContactIn, session: SessionDep, who: StaffDep) -> ContactOut:
    """Where this customer's reminders go, in which language, or none (``opt_out``)."""
    c = access.customer(session, who, username)
    row = session.get(CustomerContact, c.id) or CustomerContact(customer_id=c.id)
    for k, v in body.model_dump().items():
        setattr(row, k, v)
    session.add(row)
    session.flush()
    return ContactOut(customer=c.username, **body.model_dump())


@router.get("/customers/{username}/contact")
def get_contact(username: Ref, session: SessionDep, who: StaffDep) -> ContactOut:
    c = access.customer(session, who, username)
    row = session.get(CustomerContact, c.id)
    if row is None:
        return ContactOut(customer=c.username)
    return ContactOut(customer=c.username, email=row.email, phone=row.phone,
                      channel=row.channel, language=row.language,  # type: ignore[arg-type]
                      opt_out=row.opt_out)  # fmt: skip


@router.get("/reminders")
def list_reminders(
    session: SessionDep,
    admin: AdminDep,
    status: Annotated[
        Literal["pending", "running", "sent", "skipped", "failed"] | None, Query()
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[MessageOut]:
    """Reminders queued and sent, newest first (admin)."""
    q = select(ReminderMessage).order_by(ReminderMessage.id.desc()).limit(limit)
    if status:
        q = q.where(ReminderMessage.status == status)
    return [MessageOut.model_validate(m, from_attributes=True) for m in session.scalars(q)]
