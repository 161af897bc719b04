"""Logins for the web panels, and the caller behind a web session.

Admins and resellers log in with a web user (``web_users``): a username, an argon2 hash of
its password, a role, and for a reseller the reseller it acts for; an admin may disable
one (it cannot log in, and its sessions end). Customers log in to the portal with their
PPPoE/hotspot username and, until they set a portal password of their own, the PPPoE
password they already have (stored encrypted in ``customers.password``, compared in
constant time), so no existing customer is locked out. Once a customer has set a portal
password (an argon2 hash in ``customers.portal_password_hash``) the portal takes only
that one: the PPPoE password, which the router and often the installer know, no longer
opens the account. Its operator's reset clears it, and the PPPoE password works again
until the customer sets a new one.

A web session remembers who logged in and a *stamp* of the credential used: a keyed digest
of the password hash (web users) or of the password (customers). Each request turns the
session back into a ``Principal`` the way a bearer token is (``auth.authenticate``): a
removed user, reseller or customer, or a changed password, ends the session; a suspended
customer's principal is ``read_only`` (it may look at its account, not buy).
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import secrets, validation
from provisioner.audit import audit, secrets_of, snapshot
from provisioner.auth import Principal
from provisioner.errors import Conflict, ValidationError
from provisioner.models import AuditLog, Customer, CustomerStatus, Reseller, WebUser, utcnow
from provisioner.registry.common import get_by_name

ROLES = ("admin", "reseller")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 hashes anything; a megabyte "password" is a denial of service

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("no such user: the time of a real check")


def _password(value: Any) -> str:
    pw = str(value or "")
    if len(pw) < MIN_PASSWORD:
        raise ValidationError(f"must be at least {MIN_PASSWORD} characters", field="password")
    if len(pw) > MAX_PASSWORD:
        raise ValidationError(f"must be at most {MAX_PASSWORD} characters", field="password")
    return pw


def _audit(session: Session, actor: str, action: str, u: WebUser, before: Any) -> None:
    after = None if action == "delete" else _public(u)
    session.add(
        AuditLog(
            actor=actor,
            action=action,
            entity=WebUser.__tablename__,
            entity_id=u.id,
            before=before,
            after=after,
        )
    )


def _public(u: WebUser) -> dict[str, Any]:
    """What the audit log keeps of a web user: never the hash."""
    return {
        "id": u.id,
        "username": u.username,
        "role": u.role,
        "reseller_id": u.reseller_id,
        "disabled": u.disabled_at is not None,
    }


def create_user(
    session: Session,
    actor: str,
    username: str,
    *,
    role: str,
    password: str,
    reseller: str | None = None,
) -> WebUser:
    """A new web login. A reseller login names its reseller; an admin login none."""
    name = validation.name("username", username)
    if role not in ROLES:
        raise ValidationError("must be admin or reseller", field="role")
    u = WebUser(username=name, role=role, password_hash=_hasher.hash(_password(password)))
    if role == "reseller":
        if not reseller:
            raise ValidationError("a reseller login needs --reseller", field="reseller")
        u.reseller_id = get_by_name(session, Reseller, reseller).id
    elif reseller:
        raise ValidationError("only a reseller login names a reseller", field="reseller")
    if session.scalar(select(WebUser).where(WebUser.username == name)) is not None:
        raise Conflict(f"a web user named {name!r} exists", field="username")
    session.add(u)
    session.flush()
    _audit(session, actor, "create", u, None)
    return u


def set_password(session: Session, actor: str, username: str, password: str) -> WebUser:
    """A new password; every session logged in with the old one ends."""
    u = get_by_name(session, WebUser, username, "username")
    u.password_hash = _hasher.hash(_password(password))
    session.flush()
    after = {**_public(u), "password": "(changed)"}
    session.add(
        AuditLog(
            actor=actor,
            action="update",
            entity=WebUser.__tablename__,
            entity_id=u.id,
            before=_public(u),
            after=after,
        )
    )
    return u


def set_role(
    session: Session, actor: str, username: str, role: str, reseller: str | None = None
) -> WebUser:
    """Make a login an admin's, or a reseller's (naming the reseller); its sessions stand
    for the new role from their next request."""
    u = get_by_name(session, WebUser, username, "username")
    before = _public(u)
    if role not in ROLES:
        raise ValidationError("must be admin or reseller", field="role")
    if role == "reseller":
        if not reseller:
            raise ValidationError("a reseller login names its reseller", field="reseller")
        u.reseller_id = get_by_name(session, Reseller, reseller).id
    else:
        u.reseller_id = None
    u.role = role
    session.flush()
    _audit(session, actor, "update", u, before)
    return u


def set_disabled(session: Session, actor: str, username: str, disabled: bool) -> WebUser:
    """Turn a login off (it cannot log in; its sessions end at their next request) or
    back on."""
    u = get_by_name(session, WebUser, username, "username")
    before = _public(u)
    u.disabled_at = utcnow() if disabled else None
    session.flush()
    _audit(session, actor, "update", u, before)
    return u


def remove_user(session: Session, actor: str, username: str) -> None:
    """Remove a web login; its sessions end at their next request."""
    u = get_by_name(session, WebUser, username, "username")
    _audit(session, actor, "delete", u, _public(u))
    session.delete(u)
    session.flush()


# ---- logging in -----------------------------------------------------------------------


def _stamp(kind: str, credential: str) -> str:
    return secrets.keyed_digest(f"web session\0{kind}\0{credential}")[:32]


def staff_login(session: Session, username: str, password: str) -> dict[str, Any] | None:
    """The session data for a web user whose password is right, else None (the same
    answer, after the same work, for an unknown user and a wrong password)."""
    u = session.scalar(select(WebUser).where(WebUser.username == str(username).strip()))
    try:
        _hasher.verify(u.password_hash if u else _DUMMY_HASH, str(password)[:MAX_PASSWORD])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if u is None or u.disabled_at is not None:
        return None
    return {"kind": "staff", "id": u.id, "stamp": _stamp("staff", u.password_hash)}


def record_login(session: Session, data: dict[str, Any], now: datetime | None = None) -> None:
    """Note a web user's login time (customers have no such column)."""
    if data.get("kind") == "staff":
        u = session.get(WebUser, int(data["id"]))
        if u is not None:
            u.last_login_at = now or utcnow()


def _customer_credential(c: Customer) -> str:
    """What a customer's portal session stands on: its portal password's hash when it set
    one, else its PPPoE password (a change of either ends the session)."""
    return c.portal_password_hash or c.password


def customer_login(session: Session, username: str, password: str) -> dict[str, Any] | None:
    """The session data for a customer whose password is right, else None: its portal
    password when it has set one (then only that), else its PPPoE/hotspot password."""
    c = session.scalar(select(Customer).where(Customer.username == str(username).strip()))
    if c is not None and c.portal_password_hash:
        try:
            _hasher.verify(c.portal_password_hash, str(password)[:MAX_PASSWORD])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
    else:
        stored = c.password if c is not None else "\0no such customer"
        if not hmac.compare_digest(stored.encode(), str(password).encode()) or c is None:
            return None
    return {"kind": "customer", "id": c.id, "stamp": _stamp("customer", _customer_credential(c))}


def has_portal_password(session: Session, customer_id: int) -> bool:
    c = session.get(Customer, customer_id)
    return c is not None and c.portal_password_hash is not None


def customer_session(session: Session, customer_id: int) -> dict[str, Any] | None:
    """A customer's session data as of its credential now (after it changed its own)."""
    c = session.get(Customer, customer_id)
    if c is None:
        return None
    return {"kind": "customer", "id": c.id, "stamp": _stamp("customer", _customer_credential(c))}


def set_portal_password(
    session: Session, actor: str, customer_id: int, current: str, password: str
) -> Customer:
    """The customer's own portal password, apart from its PPPoE one: it proves the
    password it logs in with now (``current``); from then on the portal takes only the
    new one. Audited as changed, never the hash."""
    c = session.get(Customer, customer_id)
    if c is None or customer_login(session, c.username, current) is None:
        raise ValidationError("is not your current password", field="current")
    new = _password(password)
    if hmac.compare_digest(new.encode(), c.password.encode()):
        raise ValidationError("must differ from your PPPoE password", field="password")
    return _set_portal_hash(session, actor, c, _hasher.hash(new))


def reset_portal_password(session: Session, actor: str, customer: Customer) -> Customer:
    """The operator's reset: the portal password is cleared, and the customer logs in with
    its PPPoE password again until it sets a new one (its portal sessions end)."""
    return _set_portal_hash(session, actor, customer, None)


def _set_portal_hash(session: Session, actor: str, c: Customer, value: str | None) -> Customer:
    before, old = snapshot(c), secrets_of(c)
    c.portal_password_hash = value
    session.flush()
    audit(session, actor, "update", c, before, old)
    return c


def principal_of(session: Session, data: dict[str, Any]) -> Principal | None:
    """The caller behind a web session's data, or None when it no longer stands: the user
    or customer was removed, its reseller is gone, or its password changed since."""
    kind, id_, stamp = data.get("kind"), data.get("id"), str(data.get("stamp") or "")
    if not isinstance(id_, int):
        return None
    if kind == "staff":
        u = session.get(WebUser, id_)
        if u is None or not hmac.compare_digest(stamp, _stamp("staff", u.password_hash)):
            return None
        if u.disabled_at is not None:
            return None
        if u.role == "reseller":
            if u.reseller_id is None or session.get(Reseller, u.reseller_id) is None:
                return None
            return Principal("reseller", reseller_id=u.reseller_id, name=u.username)
        return Principal("admin", name=u.username)
    if kind == "customer":
        c = session.get(Customer, id_)
        credential = _customer_credential(c) if c is not None else ""
        if c is None or not hmac.compare_digest(stamp, _stamp("customer", credential)):
            return None
        return Principal(
            "customer",
            customer_id=c.id,
            name=c.username,
            read_only=c.status == CustomerStatus.suspended,
        )
    return None
