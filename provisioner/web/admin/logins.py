"""Web logins: the admins' and resellers' users of the panels (``users``): add one, change
its role (and the reseller it acts for), set a new password, disable or enable it. The
audit log keeps each change, never a password or its hash."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from provisioner import users
from provisioner.auth import Principal
from provisioner.errors import NotFound, ProvisionerError, ValidationError
from provisioner.http_threads import Route
from provisioner.read import paging as read_paging
from provisioner.read import resellers
from provisioner.read import users as web_users
from provisioner.read.models import WebUserOut
from provisioner.web.common import (
    AdminUser,
    Form,
    check_csrf,
    errors_of,
    flash,
    page,
    read,
    redirect,
    status_for,
    write,
)
from provisioner.web.lists import PAGE_SIZE, csv_response, filters_of, number_of, paging

router = APIRouter(route_class=Route, prefix="/ui/logins", dependencies=[Depends(check_csrf)])
ROLES = [("admin", "admin"), ("reseller", "reseller")]
FIELDS = ("username", "role", "reseller", "password")
COLUMNS = ["username", "role", "reseller", "disabled", "created (UTC)", "last login (UTC)"]


def _matching(s: Session, me: Principal, filters: dict[str, str]) -> list[WebUserOut]:
    q = filters["q"].lower()
    return [
        u
        for u in web_users.list_(s, me)
        if q in u.username.lower() and (not filters["role"] or u.role == filters["role"])
    ]


@router.get("")
def list_logins(request: Request, me: AdminUser) -> Response:
    """The logins by username; search, filter by role, paged."""
    filters = filters_of(request, ("q", "role"))
    number = number_of(request)
    found = read_paging.of(
        read(request, lambda s: _matching(s, me, filters)),
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    return page(
        request, "admin/logins.html", me, logins=found.items, filters=filters, roles=ROLES,
        **paging("/ui/logins", filters, number, found.total),
    )  # fmt: skip


@router.get(".csv")
def logins_csv(request: Request, me: AdminUser) -> Response:
    filters = filters_of(request, ("q", "role"))
    rows = read(request, lambda s: _matching(s, me, filters))
    return csv_response(
        "logins.csv", COLUMNS,
        ([u.username, u.role, u.reseller or "", "yes" if u.disabled else "no", u.created_at,
          u.last_login_at or ""] for u in rows),
    )  # fmt: skip


def _reseller_choices(s: Session, me: Principal) -> list[tuple[str, str]]:
    return [("", "—")] + [(r.name, r.name) for r in resellers.list_(s, me)]


@router.get("/new")
def new_login(request: Request, me: AdminUser) -> Response:
    choices = read(request, lambda s: _reseller_choices(s, me))
    return page(
        request, "admin/login_form.html", me, form={"role": "reseller"}, roles=ROLES,
        reseller_choices=choices,
    )  # fmt: skip


@router.post("/new")
def create_login(request: Request, me: AdminUser, form: Form) -> Response:
    def action(s: Session) -> Any:
        return users.create_user(
            s, me.actor, form.get("username", ""), role=form.get("role", ""),
            password=form.get("password", ""),
            reseller=(form.get("reseller") or None) if form.get("role") == "reseller" else None,
        )  # fmt: skip

    try:
        u = write(request, action)
    except ProvisionerError as exc:
        choices = read(request, lambda s: _reseller_choices(s, me))
        return page(
            request, "admin/login_form.html", me, status=status_for(exc),
            form={k: v for k, v in form.items() if k != "password"},
            errors=errors_of(exc, FIELDS), roles=ROLES, reseller_choices=choices,
        )  # fmt: skip
    flash(request, f"Login {u.username!r} added.")
    return redirect(request, f"/ui/logins/{u.id}")


def _login_of(s: Session, me: Principal, login_id: int) -> WebUserOut:
    for u in web_users.list_(s, me):
        if u.id == login_id:
            return u
    raise NotFound("there is no such login")


def _detail(
    request: Request, me: Principal, login_id: int, *, status: int = 200, **context: Any
) -> Response:
    def load(s: Session) -> dict[str, Any]:
        return {"login": _login_of(s, me, login_id), "reseller_choices": _reseller_choices(s, me)}

    found = read(request, load)
    u = found["login"]
    context.setdefault("role_form", {"role": u.role, "reseller": u.reseller or ""})
    return page(request, "admin/login.html", me, status=status, roles=ROLES, **found, **context)


@router.get("/{login_id}")
def show_login(request: Request, me: AdminUser, login_id: int) -> Response:
    return _detail(request, me, login_id)


def _change(
    request: Request,
    me: Principal,
    login_id: int,
    form: dict[str, str],
    key: str,
    fn: Any,
) -> Response:
    """One change of a login (``fn(session, username) -> message``); a refusal shows the
    page again with the reason beside the form that asked (``key``)."""

    def action(s: Session) -> str:
        return str(fn(s, _login_of(s, me, login_id).username))

    try:
        message = write(request, action)
    except ProvisionerError as exc:
        kept = {k: v for k, v in form.items() if k != "password"}
        return _detail(
            request, me, login_id, status=status_for(exc),
            **{f"{key}_form": kept, f"{key}_errors": errors_of(exc, FIELDS)},
        )  # fmt: skip
    flash(request, message)
    return redirect(request, f"/ui/logins/{login_id}")


@router.post("/{login_id}/role")
def change_role(request: Request, me: AdminUser, login_id: int, form: Form) -> Response:
    role, reseller = form.get("role", ""), form.get("reseller") or None

    def fn(s: Session, username: str) -> str:
        if username == me.name and role != "admin":
            raise ValidationError("you cannot take the admin role from yourself", field="role")
        users.set_role(s, me.actor, username, role, reseller if role == "reseller" else None)
        return f"Login {username!r} is now {role}" + (
            f" for {reseller}." if role == "reseller" else "."
        )

    return _change(request, me, login_id, form, "role", fn)


@router.post("/{login_id}/password")
def reset_password(request: Request, me: AdminUser, login_id: int, form: Form) -> Response:
    """A new password (the login's sessions end); tell it to the person, once."""

    def fn(s: Session, username: str) -> str:
        users.set_password(s, me.actor, username, form.get("password", ""))
        return f"Password of {username!r} changed; its sessions have ended."

    return _change(request, me, login_id, form, "password", fn)


@router.post("/{login_id}/disable")
def disable(request: Request, me: AdminUser, login_id: int, form: Form) -> Response:
    def fn(s: Session, username: str) -> str:
        if username == me.name:
            raise ValidationError("you cannot disable your own login")
        users.set_disabled(s, me.actor, username, True)
        return f"Login {username!r} disabled; it cannot log in."

    return _change(request, me, login_id, form, "state", fn)


@router.post("/{login_id}/enable")
def enable(request: Request, me: AdminUser, login_id: int, form: Form) -> Response:
    def fn(s: Session, username: str) -> str:
        users.set_disabled(s, me.actor, username, False)
        return f"Login {username!r} enabled."

    return _change(request, me, login_id, form, "state", fn)
