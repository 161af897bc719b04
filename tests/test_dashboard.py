"""The dashboard's sessions-online-per-hour figure (running sums of starts and stops in
one grouped query) against a plain count of the same sessions, point by point, on SQLite
and PostgreSQL; and the online count, per caller."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert

from provisioner.auth import Principal
from provisioner.context import Context
from provisioner.db import reading, transaction
from provisioner.models import Reseller, utcnow
from provisioner.radius_tables import radacct
from provisioner.read import dashboard, online
from tests.support.factories import Factory

ADMIN = Principal("admin", name="t")
# (user, started hours ago, stopped hours ago or None)
SESSIONS = [
    ("u1", 30.0, None),  # open all along
    ("u2", 30.0, 29.0),  # stopped before the window
    ("u3", 10.0, 5.0),
    ("u4", 2.5, None),
    ("u5", 23.99, 23.5),  # within one hour: seen at no point
    ("u6", 24.0, 0.2),
    ("u1", 4.0, 3.0),  # a second session of u1
]


def test_sessions_online_per_hour_equal_a_plain_count(any_ctx: Context) -> None:
    now = utcnow().replace(microsecond=0)
    with transaction(any_ctx.factory) as s:
        for i, (user, began, ended) in enumerate(SESSIONS):
            s.execute(
                insert(radacct).values(
                    acctsessionid=f"s{i}", acctuniqueid=f"u{i}", username=user,
                    nasipaddress="127.0.0.1",
                    acctstarttime=now - timedelta(hours=began),
                    acctstoptime=None if ended is None else now - timedelta(hours=ended),
                )
            )  # fmt: skip
    with reading(any_ctx.factory) as s:
        hours = dashboard.online_per_hour(s, ADMIN, now)

    def plain(at: datetime) -> int:
        n = 0
        for _, began, ended in SESSIONS:
            start = now - timedelta(hours=began)
            stop = None if ended is None else now - timedelta(hours=ended)
            n += start <= at and (stop is None or stop > at)
        return n

    assert len(hours) == 25
    assert [h.online for h in hours] == [plain(h.at) for h in hours]
    assert [h.online for h in hours][0] == 2 and hours[-1].online == 2  # u1, u6 / u1, u4


def test_online_now_counts_each_visible_customer_once(any_ctx: Context) -> None:
    make = Factory(any_ctx)
    make.router(None, host="127.0.0.1")
    master = make.master(name="home", rate_down="10M", rate_up="2M")
    pkg = make.package(master)
    res = make.reseller()
    make.customer(pkg, "r1", username="alice", reseller=res)
    make.customer(pkg, "r1", username="bob")
    with transaction(any_ctx.factory) as s:
        for i, user in enumerate(("alice", "alice", "bob", "stranger")):
            s.execute(
                insert(radacct).values(
                    acctsessionid=f"s{i}", acctuniqueid=f"x{i}", username=user,
                    nasipaddress="127.0.0.1", acctstarttime=utcnow(),
                )
            )  # fmt: skip
    with reading(any_ctx.factory) as s:
        reseller = Principal("reseller", reseller_id=s.query(Reseller).one().id)
        assert online.count(s, ADMIN) == 2  # alice once; no customer called "stranger"
        assert online.count(s, reseller) == 1
        page = online.search(s, reseller)
        assert [x.username for x in page.items] == ["alice", "alice"] and page.total == 2
