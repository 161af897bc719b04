"""The RADIUS store at the sizes an ISP reaches (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, update

from provisioner import radius_store
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.models import Customer
from provisioner.planning.plan import Action
from provisioner.radius_tables import radcheck, radreply, radusergroup
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
        plan = radius_store.plan(s, options(any_ctx.settings), usernames=names, scope_all=False)
    assert [(c.menu, c.key, c.action) for c in plan.changes] == [
        ("radcheck", "bob|Cleartext-Password", Action.add),
    ]


# ---- the whole tables by username range (issue 26: a registry of 1,000,000) -------------


def _world(ctx: Context) -> None:
    """Customers around leftovers and an admin's own users, with drift of every kind, so
    that a batch of 2 usernames puts each case in a different range (and in the open ends:
    ``aa-…`` before the first customer, ``zz-…`` after the last)."""
    make = Factory(ctx)
    router = make.router(None, mode="radius")
    pkg = make.package(make.master(name="home"))
    for user in ("bob", "carol", "dave", "erin", "mallory", "oscar", "trent"):
        make.customer(pkg, router, username=user)
    make.customer(pkg, router, username="frank", static_ip="10.64.0.9")
    make.customer(None, router, username="peggy", status="new")  # no package: expired group
    gone = ["aa-gone", "gone-1", "zz-gone"]  # customers removed outside the daemon
    for user in gone:
        make.customer(pkg, router, username=user)
    with transaction(ctx.factory) as s:
        s.execute(delete(Customer.__table__).where(Customer.username.in_(gone)))
        # Drift by hand: a row missing, a value edited, a duplicate, a stray managed row.
        s.execute(delete(radcheck).where(radcheck.c.username == "bob"))
        s.execute(
            update(radcheck)
            .where(radcheck.c.username == "dave", radcheck.c.attribute == "Cleartext-Password")
            .values(value="guessed")
        )
        s.execute(insert(radusergroup).values(username="erin", groupname="home", priority=1))
        s.execute(
            insert(radreply).values(
                username="oscar", attribute="Framed-IP-Address", op=":=", value="10.9.9.9"
            )
        )
        # Not ours, never touched: an admin's users (in a group of their own, or in none),
        # a customer's hand-added group and reply row, a leftover's unmanaged row.
        for user, group in (("aa-admin", "staff"), ("mid-admin", None), ("zz-admin", "staff")):
            s.execute(
                insert(radcheck).values(
                    username=user, attribute="Cleartext-Password", op=":=", value="secret"
                )
            )
            if group:
                s.execute(insert(radusergroup).values(username=user, groupname=group, priority=1))
        s.execute(insert(radusergroup).values(username="carol", groupname="staff", priority=5))
        s.execute(
            insert(radreply).values(
                username="carol", attribute="Mikrotik-Address-List", op="+=", value="vip"
            )
        )
        s.execute(
            insert(radreply).values(
                username="gone-1", attribute="Mikrotik-Address-List", op="+=", value="old"
            )
        )


def _rows(ctx: Context) -> set[tuple[str, str, str, str]]:
    with transaction(ctx.factory) as s:
        out = set()
        for name, t in (("radcheck", radcheck), ("radreply", radreply)):
            out |= {(name, r.username, r.attribute, r.value) for r in s.execute(select(t))}
        g = radusergroup
        out |= {
            ("radusergroup", r.username, r.groupname, str(r.priority)) for r in s.execute(select(g))
        }
        return out


NOT_OURS = {
    ("radcheck", "aa-admin", "Cleartext-Password", "secret"),
    ("radusergroup", "aa-admin", "staff", "1"),
    ("radcheck", "mid-admin", "Cleartext-Password", "secret"),
    ("radcheck", "zz-admin", "Cleartext-Password", "secret"),
    ("radusergroup", "zz-admin", "staff", "1"),
    ("radusergroup", "carol", "staff", "5"),
    ("radreply", "carol", "Mikrotik-Address-List", "vip"),
    ("radreply", "gone-1", "Mikrotik-Address-List", "old"),
}


def test_whole_table_plan_by_username_range_is_the_plan_in_one(any_ctx: Context) -> None:
    """Range by range (2 usernames each) the plan is the one read at once: removed
    customers' rows found wherever they sort (before, between, after the customers),
    drift repaired, and nothing of an admin's own touched."""
    _world(any_ctx)
    opts = options(any_ctx.settings)
    with transaction(any_ctx.factory) as s:
        ranges = list(radius_store.user_ranges(s, 2))
        whole = radius_store.plan(s, opts, batch=None)
        batched = radius_store.plan(s, opts, batch=2)
        default = radius_store.plan(s, opts)
    assert len(ranges) >= 8 and ranges[0][0] is None and ranges[-1][1] is None
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert batched == whole == default
    got = [(c.menu, c.key, c.action) for c in whole.changes]
    assert got == [
        ("radcheck", "bob|Cleartext-Password", Action.add),
        ("radcheck", "dave|Cleartext-Password", Action.set),
        ("radcheck", "aa-gone|Cleartext-Password", Action.remove),
        ("radcheck", "gone-1|Cleartext-Password", Action.remove),
        ("radcheck", "zz-gone|Cleartext-Password", Action.remove),
        ("radreply", "oscar|Framed-IP-Address", Action.remove),
        ("radusergroup", "aa-gone|home", Action.remove),
        ("radusergroup", "erin|home", Action.remove),
        ("radusergroup", "gone-1|home", Action.remove),
        ("radusergroup", "zz-gone|home", Action.remove),
    ]


def test_sync_by_username_range_commits_each_range_and_a_rerun_converges(
    any_ctx: Context,
) -> None:
    """``radius sync`` a range at a time: stopped in its fourth range, the three before
    are written and the fourth is not (whole ranges only); run again, it converges, and
    the rows not ours are as they were."""
    _world(any_ctx)
    opts = options(any_ctx.settings)
    before = _rows(any_ctx)
    assert before >= NOT_OURS
    with transaction(any_ctx.factory) as s:
        planned = radius_store.plan(s, opts)
        ranges = list(radius_store.user_ranges(s, 2))
    done: list[str | None] = []

    def stop_in_the_fourth(hi: str | None) -> None:
        done.append(hi)
        if len(done) == 4:
            raise RuntimeError("stopped")

    with pytest.raises(RuntimeError):
        radius_store.sync_all(any_ctx.factory, opts, batch=2, after_range=stop_in_the_fourth)
    written_ranges = ranges[:3]

    def in_written(key: str) -> bool:
        user = key.split("|")[0]
        return any(
            (lo is None or user > lo) and (hi is None or user <= hi) for lo, hi in written_ranges
        )

    with transaction(any_ctx.factory) as s:
        left = radius_store.plan(s, opts)
    assert left.changes == tuple(c for c in planned.changes if not in_written(c.key))
    assert 0 < len(left.changes) < len(planned.changes)
    written, counts = radius_store.sync_all(any_ctx.factory, opts, batch=2)
    assert written == len(left.changes)
    assert counts == left.counts()
    with transaction(any_ctx.factory) as s:
        assert radius_store.plan(s, opts).changes == ()
    after = _rows(any_ctx)
    assert after >= NOT_OURS
    assert not any(row[1] in ("aa-gone", "zz-gone") for row in after)
    assert [row for row in after if row[1] == "gone-1"] == [
        ("radreply", "gone-1", "Mikrotik-Address-List", "old")
    ]
    assert [r[:3] for r in after if r[1] == "bob"].count(
        ("radcheck", "bob", "Cleartext-Password")
    ) == 1
    dave = [r[3] for r in after if r[:3] == ("radcheck", "dave", "Cleartext-Password")]
    assert len(dave) == 1 and dave != ["guessed"]


def test_a_users_group_changed_is_one_update_of_its_row(any_ctx: Context) -> None:
    """A package changed (or a user cut off, or back): the plan says the old group goes
    and the new one comes, and the store moves the user's row to the new group in one
    UPDATE (same id) instead of a DELETE and an INSERT. A second group row of the same
    user, an admin's own, is not touched."""
    from provisioner.models import Package

    make = Factory(any_ctx)
    router = make.router(None, mode="radius")
    home = make.package(make.master(name="home"))
    pro = make.package(make.master(name="pro"))
    make.customer(home, router, username="alice")
    rows = select(radusergroup.c.id, radusergroup.c.groupname, radusergroup.c.priority).where(
        radusergroup.c.username == "alice"
    )
    with transaction(any_ctx.factory) as s:
        s.execute(insert(radusergroup).values(username="alice", groupname="vip", priority=9))
        before = {g: (i, p) for i, g, p in s.execute(rows)}
        pro_id = s.scalar(select(Package.id).where(Package.name == pro))
        s.execute(update(Customer).where(Customer.username == "alice").values(package_id=pro_id))
        plan = radius_store.plan(s, options(any_ctx.settings), usernames=["alice"])
        groups = {c.action: c.key.partition("|")[2] for c in plan.changes
                  if c.menu == "radusergroup"}  # fmt: skip
        assert sorted(groups) == [Action.add, Action.remove]
        old, new = groups[Action.remove], groups[Action.add]
        sent = [(stmt.is_update, stmt.is_delete, stmt.is_insert)
                for stmt, _ in radius_store.statements(plan)]  # fmt: skip
        assert sent == [(True, False, False)]  # one UPDATE
        radius_store.apply(s, plan)
        after = {g: (i, p) for i, g, p in s.execute(rows)}
    assert set(before) == {old, "vip"}
    assert after == {new: (before[old][0], after[new][1]), "vip": before["vip"]}
    with transaction(any_ctx.factory) as s:  # and nothing is left to do
        assert radius_store.plan(s, options(any_ctx.settings), usernames=["alice"]).changes == ()
