"""The RADIUS store at the sizes an ISP reaches (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import delete

from provisioner import radius_store
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.planning.plan import Action
from provisioner.radius_tables import radcheck
from provisioner.state import options
from tests.support.factories import Factory


def test_planning_more_users_than_postgresql_takes_parameters(any_ctx: Context) -> None:
    """PostgreSQL refuses a statement with more than 65,535 parameters: a 70,000-user
    diff (or a package rename touching that many customers) must still plan."""
    make = Factory(any_ctx)
    router = make.router(None, mode="radius")
    pkg = make.package(make.master(name="home"))
    for user in ("alice", "bob"):
        make.customer(pkg, router, username=user)
    with transaction(any_ctx.factory) as s:
        s.execute(delete(radcheck).where(radcheck.c.username == "bob"))  # drift by hand
        names = ["alice", "bob"] + [f"gone-{i}" for i in range(70_000)]
        plan = radius_store.plan(
            s, options(any_ctx.settings), usernames=names, scope_all=False
        )
    assert [(c.menu, c.key, c.action) for c in plan.changes] == [
        ("radcheck", "bob|Cleartext-Password", Action.add),
    ]
