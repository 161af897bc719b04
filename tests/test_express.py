"""The express lane writes exactly what the general path writes.

Two databases are built the same way, one with ``activation_express`` on and one with it
off; the same activations run on both with the clock frozen, and every table an
activation touches must then hold the same rows (the API's answers too). A spy on the
lane proves which cases it took, so a lane that always gave up could not pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from provisioner import activation, express, ledger, registry
from provisioner.activation import ActivationRequest
from provisioner.auth import Principal
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.errors import PaymentRequired, ProvisionerError
from provisioner.models import (
    Account,
    Activation,
    Customer,
    CustomerStatus,
    Invoice,
    LedgerEntry,
    Outbox,
    Reseller,
)
from provisioner.radius_tables import radacct, radcheck, radreply, radusergroup
from provisioner.read import activations
from tests.support.factories import Factory

AT = datetime(2026, 3, 10, 9, 30, 15, 123456, tzinfo=UTC)

# Columns that hold the wall clock (defaults the clock below does not reach) or
# ciphertext (a fresh IV each time): everything else must be equal.
SKIP = {"created_at", "updated_at", "next_attempt_at", "password"}
TABLES = [
    Activation.__table__, LedgerEntry.__table__, Account.__table__, Invoice.__table__,
    Outbox.__table__, Customer.__table__, radcheck, radreply, radusergroup,
]  # fmt: skip


class World:
    """One database with routers, packages, resellers and customers, made the same way
    each time it is built."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        make = Factory(ctx)
        self.radius_router = make.router(None, mode="radius")
        self.local_router = make.router(None, mode="local")
        monthly = make.master(name="home", fup_threshold=1000, fup_down="1M", fup_up="1M")
        daily = make.master(name="day", billing="daily", duration_days=1)
        static = make.master(name="fixed", customer_type="static")
        self.home = make.package(monthly, name="Home", operator_price="400")
        self.home2 = make.package(monthly, name="Home Two", operator_price="420")
        self.day = make.package(daily, name="Day", operator_price="20")
        self.fixed = make.package(static, name="Fixed", operator_price="900")
        self.reseller = make.reseller()
        self.parent = make.reseller(may_have_subresellers=True)
        self.poor = make.reseller()
        self.stingy = make.reseller(may_have_subresellers=True)
        with transaction(ctx.factory) as s:
            self.sub = registry.create_reseller(s, "t", {"name": "sub", "parent": self.parent}).name
            self.sub2 = registry.create_reseller(
                s, "t", {"name": "sub2", "parent": self.stingy}
            ).name
            for r in (self.reseller, self.parent, self.poor, self.stingy):
                for p in (self.home, self.home2, self.day, self.fixed):
                    registry.assign_package(s, "t", r, p)
            registry.assign_package(s, "t", self.sub, self.home, "450")
            registry.assign_package(s, "t", self.sub2, self.home, "450")
            ids = {n: i for n, i in s.execute(select(Reseller.name, Reseller.id))}
            for r in (self.reseller, self.parent, self.sub, self.sub2):
                ledger.topup(s, "t", f"reseller:{ids[r]}", Decimal("100000"))
            for r in (self.poor, self.stingy):
                ledger.topup(s, "t", f"reseller:{ids[r]}", Decimal("10"))
        self.who = {name: Principal("reseller", reseller_id=i) for name, i in ids.items()}
        self.customers: dict[str, str] = {}
        for name, router, owner, kw in [
            ("new1", self.radius_router, self.reseller, {}),
            ("new2", self.local_router, self.reseller, {}),
            ("daily", self.radius_router, self.reseller, {}),
            ("lapsed", self.radius_router, self.reseller, {}),
            ("throttled", self.radius_router, self.reseller, {}),
            ("spent", self.radius_router, self.reseller, {}),
            ("held", self.radius_router, self.reseller, {}),
            ("fixed", self.radius_router, self.reseller,
             {"customer_type": "static", "static_ip": "10.9.0.7"}),
            ("upgrade", self.radius_router, self.reseller, {}),
            ("online", self.radius_router, self.reseller, {}),
            ("billed", self.radius_router, self.reseller, {}),
            ("subs", self.radius_router, self.sub, {}),
            ("subs2", self.radius_router, self.sub2, {}),
            ("broke", self.radius_router, self.poor, {}),
        ]:  # fmt: skip
            with transaction(ctx.factory) as s:
                c = registry.create_customer(
                    s, "t",
                    {"username": name, "password": f"pw-{name}", "customer_type": "pppoe",
                     "router": router, "reseller": owner, "package": None, "status": "new",
                     **kw},
                )  # fmt: skip
                self.customers[name] = c.username

    def set_customer(self, name: str, **values: Any) -> None:
        with transaction(self.ctx.factory) as s:
            s.execute(update(Customer).where(Customer.username == name).values(**values))

    def activate(self, who: str, customer: str, package: str, key: str) -> Any:
        """The API's answer (a dict), or the refusal (its class and message)."""
        req = ActivationRequest(customer, package, key)
        principal = self.who[who]
        try:
            _, shown = activation.run_and_view(
                self.ctx.factory, principal, req,
                lambda s, a, made: activations.view(s, principal, a, made),
            )  # fmt: skip
        except ProvisionerError as exc:
            return (type(exc).__name__, str(exc))
        assert shown is not None
        return shown.model_dump()

    def rows(self) -> dict[str, list[tuple[Any, ...]]]:
        out = {}
        with transaction(self.ctx.factory) as s:
            for t in TABLES:
                cols = [c for c in t.c if c.name not in SKIP]
                key = list(t.primary_key.columns)
                out[t.name] = [tuple(r) for r in s.execute(select(*cols).order_by(*key))]
        return out


def script(w: World) -> list[tuple[str, str, str]]:
    """(who, customer, package) of every activation, in order; each gets its own key.
    Between some of them the clock moves or a row is changed as an admin or the FUP job
    would (``steps``)."""
    r = w.reseller
    return [
        (r, "new1", w.home),  # first activation, RADIUS mode: express, applied
        (r, "new1", w.home),  # renewal while active: extends from the expiry
        (r, "new2", w.home),  # local mode: express, a sync of its router, pending
        (r, "daily", w.day),  # daily billing: no invoice
        (r, "lapsed", w.home),  # expired a while ago: a new cycle from now
        (r, "throttled", w.home),  # throttled, renewed early: stays throttled
        (r, "spent", w.home),  # throttled, then lapsed: a new cycle, full speed again
        (r, "held", w.home),  # suspended by an admin: a reseller's purchase lifts it
        (r, "fixed", w.fixed),  # static with an address: its router syncs
        (r, "upgrade", w.home2),  # another package than the one it has: general path
        (r, "online", w.home),  # a live session to tell (first package): general path
        (r, "billed", w.home),  # an open invoice: general path
        (w.sub, "subs", w.home),  # a sub-reseller: it and its parent pay, in the lane
        (w.sub2, "subs2", w.home),  # its parent cannot pay: redone by the general path
        (w.poor, "broke", w.home),  # cannot pay: the general path's refusal
        (r, "nobody", w.home),  # unknown customer: the general path's 404
        (r, "new1", "No Such"),  # unknown package
    ]


EXPRESS = {"new1", "new2", "daily", "lapsed", "throttled", "spent", "held", "fixed", "subs"}


def prepare(w: World, at: datetime) -> None:
    """The state before the script: lapsed, throttled, held, upgrade, online, billed."""
    w.set_customer("lapsed", status=CustomerStatus.expired, expires_at=at - timedelta(days=3))
    with transaction(w.ctx.factory) as s:
        home = s.scalar(select(Customer.package_id).where(Customer.username == "upgrade"))
        assert home is None
    for name in ("throttled", "spent", "upgrade", "billed"):
        w.activate(w.reseller, name, w.home, f"setup-{name}")
    w.set_customer("throttled", throttled_until=at + timedelta(days=5))
    w.set_customer(
        "spent", status=CustomerStatus.expired, expires_at=at - timedelta(days=1),
        throttled_until=at + timedelta(days=2),
    )  # fmt: skip
    w.set_customer("held", status=CustomerStatus.suspended, suspended_reason="admin")
    with transaction(w.ctx.factory) as s:
        s.execute(
            insert(radacct).values(
                acctsessionid="s1", acctuniqueid="u-online", username="online",
                nasipaddress="127.0.0.101", acctstarttime=at, framedipaddress="10.1.0.9",
            )
        )  # fmt: skip
        cid = s.scalar(select(Customer.id).where(Customer.username == "billed"))
        s.execute(update(Invoice).where(Invoice.customer_id == cid).values(status="open"))


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set the clock the activation paths read."""

    def set_to(at: datetime) -> None:
        for module in (activation, express):
            monkeypatch.setattr(module, "utcnow", lambda at=at: at)

    return set_to


def test_express_lane_writes_what_the_general_path_writes(
    ctx_factory: Any, backend: str, frozen: Callable[[datetime], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    at = AT
    taken: list[str] = []
    real = express.activate

    def spy(session: Any, principal: Any, key: str, customer: str, *a: Any) -> Any:
        made = real(session, principal, key, customer, *a)
        if made is not None:
            taken.append(customer)
        return made

    monkeypatch.setattr(express, "activate", spy)
    results = {}
    rows = {}
    for lane in (True, False):
        frozen(at)
        w = World(ctx_factory(backend, activation_express=lane))
        prepare(w, at)
        taken.clear()
        answers = []
        for i, (who, customer, package) in enumerate(script(w)):
            frozen(at + timedelta(minutes=i))
            answers.append(w.activate(who, customer, package, f"key-{i}"))
        # The same key again: the first activation, charged once.
        answers.append(w.activate(w.reseller, "new1", w.home, "key-0"))
        results[lane], rows[lane] = answers, w.rows()
        assert set(taken) == (EXPRESS if lane else set()), lane
    assert results[True] == results[False]
    for table in rows[False]:
        assert rows[True][table] == rows[False][table], table
    # And the script did what its comments say, so equal means the same *right* rows.
    got = results[True]
    assert got[0]["status"] == "applied" and got[2]["status"] == "pending"  # new1, new2
    assert got[2]["work"][0]["kind"] == "sync_router"
    assert got[1]["starts_at"] == got[0]["expires_at"]  # the renewal extends
    assert [type(g) for g in got[9:13]] == [dict] * 4  # upgrade, online, billed, subs
    assert got[13][0] == PaymentRequired.__name__ and "refused up the chain" in got[13][1]
    assert got[14][0] == PaymentRequired.__name__ and "insufficient balance" in got[14][1]
    assert got[15][0] == got[16][0] == "NotFound"
    assert got[-1]["id"] == got[0]["id"]  # the replay


def test_a_customer_changed_under_the_lane_is_done_again_by_the_general_path(
    ctx_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another transaction changes the customer between the lane's read and its write:
    the lane's writes roll back (its debit too) and the general path does it afresh."""
    ctx = ctx_factory("postgresql")  # SQLite's writer lock would make the other one wait
    w = World(ctx)
    real = express._resolve
    moved = timedelta(days=9)

    def resolve_then_change(session: Any, *a: Any, **kw: Any) -> Any:
        row, observed = real(session, *a, **kw)
        if row is not None and row.username == "lapsed":
            w.set_customer("lapsed", status=CustomerStatus.active, expires_at=AT + moved,
                           package_id=select(Customer.package_id).where(
                               Customer.username == "new1").scalar_subquery())  # fmt: skip
        return row, observed

    w.activate(w.reseller, "new1", w.home, "k0")
    monkeypatch.setattr(express, "_resolve", resolve_then_change)
    monkeypatch.setattr(activation, "utcnow", lambda: AT)
    monkeypatch.setattr(express, "utcnow", lambda: AT)
    got = w.activate(w.reseller, "lapsed", w.home, "k1")
    assert got["starts_at"] == (AT + moved).isoformat()  # extends what the other one set
    with transaction(ctx.factory) as s:
        rid = w.who[w.reseller].reseller_id
        assert s.scalar(select(Account.balance).where(Account.account == f"reseller:{rid}")) == (
            Decimal("100000") - 2 * Decimal("400")
        )
        assert len(list(s.scalars(select(Activation.id)))) == 2
        assert ledger.check(s) == []


def test_the_lane_committing_with_its_writes_keeps_nothing_when_a_guard_fails(
    ctx_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``express_and_view`` sends the lane's writes and its COMMIT in one round trip on
    PostgreSQL: a customer changed since the read, or a payer that cannot pay, must fail
    the transaction in the database (``provisioner_guard``), so nothing of it is kept and
    the caller is told to take the general path (None)."""
    ctx = ctx_factory("postgresql")
    w = World(ctx)
    real = express._resolve
    rid = w.who[w.reseller].reseller_id

    def resolve_then_change(session: Any, *a: Any, **kw: Any) -> Any:
        row, observed = real(session, *a, **kw)
        if row is not None and row.username == "lapsed":
            w.set_customer("lapsed", expires_at=AT + timedelta(days=9))
        return row, observed

    def state() -> tuple[Any, ...]:
        with transaction(ctx.factory) as s:
            return (
                s.scalar(select(Account.balance).where(Account.account == f"reseller:{rid}")),
                list(s.scalars(select(Activation.idempotency_key).order_by(Activation.id))),
                s.scalar(select(Customer.expires_at).where(Customer.username == "lapsed")),
                ledger.check(s),
            )

    def lane(who: str, customer: str, key: str) -> Any:
        principal = w.who[who]
        return activation.express_and_view(
            ctx.factory, principal, ActivationRequest(customer, w.home, key),
            lambda s, a, made: activations.view(s, principal, a, made),
        )  # fmt: skip

    made = lane(w.reseller, "new1", "k0")
    assert made is not None and made[0].customer == "new1" and made[1]  # committed
    before = state()
    assert before[1] == ["k0"] and before[3] == []
    monkeypatch.setattr(express, "_resolve", resolve_then_change)
    assert lane(w.reseller, "lapsed", "k1") is None
    after = state()
    assert after[:2] == before[:2] and after[2] == AT + timedelta(days=9)  # only the change
    assert lane(w.poor, "broke", "k2") is None  # cannot pay
    assert state()[:2] == before[:2] and state()[3] == []


def test_the_lane_waits_little_for_a_row_lock_held_elsewhere(ctx_factory: Any) -> None:
    """An admin's transaction left open on the reseller's account row: the lane (on the
    API worker's few lane threads) gives up after its lock timeout, having kept nothing,
    and the general path, which waits, makes the activation once the row is free."""
    ctx = ctx_factory("postgresql")
    w = World(ctx)
    principal = w.who[w.reseller]
    account = f"reseller:{principal.reseller_id}"
    req = ActivationRequest("new1", w.home, "k1")

    def view(s: Any, a: Any, made: Any) -> Any:
        return activations.view(s, principal, a, made)

    before = lane_counts()["lock_timeout"]
    with ctx.factory() as holder, holder.begin():
        holder.execute(select(Account.balance).where(Account.account == account).with_for_update())
        started = time.monotonic()
        assert activation.express_and_view(ctx.factory, principal, req, view) is None
        waited = time.monotonic() - started
        with transaction(ctx.factory) as s:
            assert list(s.scalars(select(Activation.id))) == []
    assert lane_counts()["lock_timeout"] == before + 1  # counted for /metrics
    assert 0.9 < waited < 10, waited  # its lock timeout (1 s), not for good
    _, shown = activation.run_and_view(ctx.factory, principal, req, view, lane=False)
    assert shown is not None and shown.customer == "new1"
    with transaction(ctx.factory) as s:
        assert len(list(s.scalars(select(Activation.id)))) == 1
        assert ledger.check(s) == []


def test_a_lane_connection_found_dead_hands_over_and_the_next_reconnects(
    ctx_factory: Any,
) -> None:
    """The lane's pool takes no pre-ping (``Context.lane``): a connection the server has
    dropped (a restart, an idle timeout) makes that one activation go to the general path
    (None, nothing kept), and the next one gets a new connection."""
    from sqlalchemy import text

    ctx = ctx_factory("postgresql")
    w = World(ctx)
    principal = w.who[w.reseller]

    def lane(customer: str, key: str) -> Any:
        return activation.express_and_view(
            ctx.lane_factory, principal, ActivationRequest(customer, w.home, key),
            lambda s, a, made: activations.view(s, principal, a, made),
        )  # fmt: skip

    assert ctx.lane_factory is not ctx.factory
    assert lane("new1", "k1") is not None
    with ctx.lane_factory() as s:
        pid = s.scalar(text("SELECT pg_backend_pid()"))  # the one connection it keeps
    with transaction(ctx.factory) as s:
        assert s.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    time.sleep(0.2)
    assert lane("new2", "k2") is None
    with transaction(ctx.factory) as s:
        assert list(s.scalars(select(Activation.idempotency_key))) == ["k1"]
    made = lane("new2", "k3")
    assert made is not None and made[0].customer == "new2"
    with ctx.lane_factory() as s:
        assert s.scalar(text("SELECT pg_backend_pid()")) != pid


def test_two_purchases_for_one_customer_at_once_both_count(
    ctx_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two activations of one customer under two keys at the same moment, on the general
    path: both are charged, so both periods must count. Each transaction waits (up to 2 s)
    for the other to have read the customer before it computes its period; the second must
    find the first's expiry, not the one both would have read without the row lock."""
    import contextlib
    import threading

    ctx = ctx_factory("postgresql")
    w = World(ctx)
    principal = w.who[w.reseller]
    w.activate(w.reseller, "new1", w.home, "k0")
    with transaction(ctx.factory) as s:
        expiry = s.scalar(select(Customer.expires_at).where(Customer.username == "new1"))
    both_read = threading.Barrier(2)
    real_period = activation.period

    def period_when_both_read(*a: Any, **kw: Any) -> Any:
        # Times out when the other one waits on the customer's row lock.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait(timeout=2)
        return real_period(*a, **kw)

    monkeypatch.setattr(activation, "period", period_when_both_read)
    answers: list[Any] = []

    def buy(key: str) -> None:
        _, shown = activation.run_and_view(
            ctx.factory, principal, ActivationRequest("new1", w.home, key),
            lambda s, a, made: activations.view(s, principal, a, made), lane=False,
        )  # fmt: skip
        answers.append(shown)

    threads = [threading.Thread(target=buy, args=(k,)) for k in ("k1", "k2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(answers) == 2 and all(a is not None for a in answers)
    first, second = sorted(answers, key=lambda a: a.starts_at)
    assert first.starts_at == expiry.isoformat()  # extends the one before
    assert second.starts_at == first.expires_at  # extends the first, not the same expiry
    with transaction(ctx.factory) as s:
        now = s.scalar(select(Customer.expires_at).where(Customer.username == "new1"))
        assert now.isoformat() == second.expires_at
        assert ledger.check(s) == []


def test_a_deadlock_ended_by_postgresql_is_done_again_by_the_general_path(
    ctx_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL ends a deadlock by failing one transaction (SQLSTATE 40P01): that
    activation is done afresh on the general path, once, not answered with a 500; any
    other database error is not retried."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    ctx = ctx_factory("postgresql")
    w = World(ctx)
    real = express.activate
    calls: list[str] = []

    def deadlocked(session: Any, principal: Any, key: str, customer: str, *a: Any) -> Any:
        real(session, principal, key, customer, *a)  # its writes are rolled back
        calls.append(customer)
        raise OperationalError("UPDATE …", {}, psycopg.errors.DeadlockDetected("deadlock"))

    monkeypatch.setattr(express, "activate", deadlocked)
    got = w.activate(w.reseller, "new1", w.home, "k1")
    assert calls == ["new1"] and got["customer"] == "new1" and got["status"] == "applied"
    with transaction(ctx.factory) as s:
        assert len(list(s.scalars(select(Activation.id)))) == 1
        assert ledger.check(s) == []

    def failing(session: Any, *a: Any) -> Any:
        raise OperationalError("SELECT …", {}, psycopg.errors.QueryCanceled("canceled"))

    monkeypatch.setattr(express, "activate", failing)
    with pytest.raises(OperationalError):
        w.activate(w.reseller, "new2", w.home, "k2")


def test_the_api_shortcut_answers_and_writes_what_the_route_does(
    ctx_factory: Any, backend: str, frozen: Callable[[datetime], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The same script over HTTP twice: with tokens cached, so ``api.shortcut`` answers
    the lane's cases before any routing, and with no cache, so the route answers every
    request. Every answer (status and body) and every row must be the same; a spy proves
    which requests the shortcut answered, and that the route skips the lane once the
    shortcut has found it declines."""
    from fastapi.testclient import TestClient

    from provisioner.api import create_app
    from provisioner.auth import create_token

    answered: list[str] = []
    replayed: list[bool] = []
    lanes: list[tuple[str, bool]] = []
    real_answer, real_run = activation.express_and_view, activation.run_and_view

    def answer_spy(factory: Any, principal: Any, req: ActivationRequest, view: Any) -> Any:
        shown = real_answer(factory, principal, req, view)
        if shown is not None:
            answered.append(req.customer)
            replayed.append(not shown[1])
        return shown

    def run_spy(factory: Any, principal: Any, req: ActivationRequest, view: Any,
                lane: bool = True) -> Any:  # fmt: skip
        lanes.append((req.customer, lane))
        return real_run(factory, principal, req, view, lane)

    monkeypatch.setattr(activation, "express_and_view", answer_spy)
    monkeypatch.setattr(activation, "run_and_view", run_spy)
    results, rows = {}, {}
    for cached in (True, False):
        frozen(AT)
        ctx = ctx_factory(backend, token_cache_seconds=30.0 if cached else 0.0)
        w = World(ctx)
        prepare(w, AT)
        with transaction(ctx.factory) as s:
            tokens = {name: create_token(s, role="reseller", reseller=name) for name in w.who}
            admin = create_token(s, role="admin")
        answered.clear()
        replayed.clear()
        lane_before = lane_counts()
        lanes.clear()
        answers = []
        with TestClient(create_app(ctx)) as client:

            def call(who: str, customer: str, package: str, key: str,
                     tokens: dict[str, str] = tokens) -> tuple[int, Any]:  # fmt: skip
                headers = {"Authorization": f"Bearer {tokens[who]}"}
                body = {"customer": customer, "package": package, "idempotency_key": key}
                r = client.post("/api/v1/activations", json=body, headers=headers)
                return r.status_code, r.json()

            for token in tokens.values():  # every token verified (and cached) first
                assert client.get("/api/v1/balance", headers={
                    "Authorization": f"Bearer {token}"}).status_code == 200  # fmt: skip
            tokens["admin"] = admin
            for i, (who, customer, package) in enumerate(script(w)):
                frozen(AT + timedelta(minutes=i))
                answers.append(call(who, customer, package, f"key-{i}"))
            # What the shortcut found the lane declines, the route does without it.
            declined = {c for c, lane in lanes if not lane}
            lanes.clear()
            # Key reuse: the same request (the first activation, 200), another package,
            # another customer, another caller (each the route's 409).
            answers.append(call(w.reseller, "new1", w.home, "key-0"))
            answers.append(call(w.reseller, "new2", w.home, "key-2"))  # with its work
            answers.append(call(w.reseller, "new1", w.home2, "key-0"))
            answers.append(call(w.reseller, "new2", w.home, "key-0"))
            answers.append(call(w.poor, "broke", w.home, "key-0"))
            # A key an admin used for this reseller's customer: the route's 409 too.
            answers.append(call("admin", "new2", w.home, "key-admin"))
            answers.append(call(w.reseller, "new2", w.home, "key-admin"))
        results[cached], rows[cached] = answers, w.rows()
        if cached:
            assert set(answered) == EXPRESS
            assert declined == {"upgrade", "online", "billed", "subs2", "broke", "nobody",
                                "new1"}  # fmt: skip
            assert [c for c, again in zip(answered, replayed, strict=True) if again] == [
                "new1", "new2"]  # fmt: skip
            # The reuses of a key that are not the replay: the route's.
            assert lanes == [("new1", False), ("new2", False), ("broke", False),
                             ("new2", True), ("new2", False)]  # fmt: skip
            # Counted for /metrics: 10 made (new1 twice), 2 replays; 2 guards failed (subs2's parent
            # and broke cannot pay); 9 declined: upgrade, online, billed, nobody, an
            # unknown package, and the four reuses of a key by resellers.
            after = lane_counts()
            got_counts = {k: after[k] - lane_before[k] for k in after}
            assert got_counts == {"created": 10, "replayed": 2, "redo": 2, "declined": 9,
                                  "lock_timeout": 0, "key_race": 0}  # fmt: skip
        else:
            assert answered == [] and all(lane for _, lane in lanes)
    assert results[True] == results[False]
    for table in rows[False]:
        assert rows[True][table] == rows[False][table], table
    got = results[True]
    assert [status for status, _ in got[:9]] == [201] * 9
    assert got[0][1]["status"] == "applied" and got[2][1]["work"][0]["kind"] == "sync_router"
    assert got[13][0] == got[14][0] == 402 and got[15][0] == got[16][0] == 404
    assert got[-7] == (200, got[0][1])  # the replay: the route's, the first activation
    assert got[-6] == (200, got[2][1]) and got[-6][1]["work"][0]["kind"] == "sync_router"
    assert [status for status, _ in got[-5:]] == [409, 409, 409, 201, 409]


def lane_counts() -> dict[str, float]:
    """``provisioner_activation_lane_total`` by outcome, in this process."""
    from provisioner import metrics

    outcomes = ("created", "replayed", "redo", "declined", "lock_timeout", "key_race")
    return {
        o: metrics.REGISTRY.get_sample_value("provisioner_activation_lane_total", {"outcome": o})
        or 0.0
        for o in outcomes
    }


@pytest.mark.parametrize("size", [10, 40_000])
def test_a_request_the_shortcut_does_not_take_reaches_the_app_as_it_came(
    ctx: Context, size: int
) -> None:
    """A body in several chunks (small, or past what the shortcut reads) reaches the app
    whole and in order when the shortcut does not answer (here: no cached token)."""
    import asyncio

    from provisioner.api.shortcut import ActivationShortcut

    sent = [bytes([65 + i]) * size for i in range(3)]
    got: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            m = await receive()
            got.append(m.get("body", b""))
            if not m.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    class App:
        state = type("State", (), {})()

    messages = [{"type": "http.request", "body": c, "more_body": i < 2} for i, c in enumerate(sent)]
    out: list[Any] = []

    async def receive() -> Any:
        return messages.pop(0)

    async def send(m: Any) -> None:
        out.append(m)

    scope = {
        "type": "http", "method": "POST", "path": "/api/v1/activations", "app": App(),
        "headers": [(b"content-type", b"application/json"),
                    (b"authorization", b"Bearer not-cached")],
    }  # fmt: skip
    asyncio.run(ActivationShortcut(app, ctx, "/api/v1/activations")(scope, receive, send))
    assert b"".join(got) == b"".join(sent) and out[0]["status"] == 204


def test_the_lanes_threads_end_with_the_app(ctx_factory: Any) -> None:
    """The shortcut's own threads are shut down with the app's lifespan (a process that
    builds many apps, as the tests do, kept every one's idle threads)."""
    import threading

    from fastapi.testclient import TestClient

    from provisioner.api import create_app
    from provisioner.api.shortcut import ActivationShortcut
    from provisioner.auth import create_token
    from provisioner.models import Reseller
    from tests.test_activation import buyers_for_150

    def lane_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("activation-lane")}

    ctx = ctx_factory("sqlite", token_cache_seconds=30.0)
    who, pkg = buyers_for_150(ctx)
    with transaction(ctx.factory) as s:
        reseller = s.get(Reseller, who.reseller_id)
        assert reseller is not None
        token = create_token(s, role="reseller", reseller=reseller.name)
    before, made = lane_threads(), lane_counts()["created"]
    app = create_app(ctx)
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/balance", headers=headers).status_code == 200
        body = {"customer": "c0", "package": pkg, "idempotency_key": "k0"}
        assert client.post("/api/v1/activations", json=body, headers=headers).status_code == 201
        assert lane_counts()["created"] == made + 1
        started = lane_threads() - before
        assert started
        node: Any = app.middleware_stack
        while not isinstance(node, ActivationShortcut):
            node = node.app
    assert not any(t.is_alive() for t in started)
    with pytest.raises(RuntimeError):
        node.pool.submit(print)
