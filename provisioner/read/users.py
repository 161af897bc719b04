"""Web logins (admins' and resellers' panel users) as an admin sees them: admins only."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.auth import Principal
from provisioner.models import Reseller, WebUser
from provisioner.read.models import WebUserOut


def list_(session: Session, principal: Principal) -> list[WebUserOut]:
    principal.require("admin")
    rows = session.execute(
        select(WebUser, Reseller.name)
        .outerjoin(Reseller, Reseller.id == WebUser.reseller_id)
        .order_by(WebUser.username)
    )
    return [
        WebUserOut(
            id=u.id,
            username=u.username,
            role=u.role,
            reseller=reseller,
            created_at=u.created_at.isoformat(timespec="seconds"),
            last_login_at=u.last_login_at.isoformat(timespec="seconds")
            if u.last_login_at
            else None,
            disabled=u.disabled_at is not None,
        )
        for u, reseller in rows
    ]
