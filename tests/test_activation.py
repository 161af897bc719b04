"""Activations: money, idempotency, authorisation, per-type work, CoA/Disconnect, expiry,
outbox recovery — against SQLite and PostgreSQL, the simulator and a pyrad CoA server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import activation, cards, ledger, outbox, registry
from provisioner.activation import ActivationRequest, run_activation
from provisioner.auth import Principal
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.errors import Conflict, Forbidden, NotFound, PaymentRequired, ValidationError
from provisioner.models import Activation, Customer, LedgerEntry, Outbox, Reseller, utcnow
from provisioner.radius_tables import radacct, radusergroup
from provisioner.read import activations
from tests.support.coa_server import CoaServer
from tests.support.factories import Factory

ADMIN = Principal("admin", name="test")


@pytest.fixture
def coa() -> Iterator[CoaServer]:
    with CoaServer("s3cret") as server:
        yield server


def reseller_with(ctx: Context, make: Factory, price: str = "400") -> tuple[Principal, str, str]:
    """A reseller with one assigned pppoe package at ``price`` and a router."""
    router = make.router(None, mode="radius")
    pkg = make.package(
        make.master(name="home"), name="Home 10", customer_price="500", operator_price=price
    )
    name = make.reseller()
    with transaction(ctx.factory) as s:
        registry.assign_package(s, "t", name, pkg)
        rid = s.scalar(select(Reseller.id).where(Reseller.name == name))
    return Principal("reseller", reseller_id=rid), pkg, router


def buyers_for_150(ctx: Context) -> tuple[Principal, str]:
    """A reseller with 200 customers c0..c199 and a balance for exactly 150 activations
    of its package (price 10)."""
    who, pkg, router = reseller_with(ctx, Factory(ctx), price="10")
    with transaction(ctx.factory) as s:
        res_name = s.get(Reseller, who.reseller_id).name  # type: ignore[union-attr]
        for i in range(200):
            registry.create_customer(s, "t", {
                "username": f"c{i}", "password": "p", "customer_type": "pppoe",
                "router": router, "reseller": res_name,
            })  # fmt: skip
        ledger.topup(s, "admin", f"reseller:{who.reseller_id}", "1500")
    return who, pkg


def test_concurrent_activations_never_overdraw(ctx_factory: Any, backend: str) -> None:
    ctx = ctx_factory(backend)
    who, pkg = buyers_for_150(ctx)
    outcomes: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        try:
            run_activation(ctx.factory, who, ActivationRequest(f"c{i}", pkg, f"key-{i}"))
            r = "ok"
        except PaymentRequired:
            r = "refused"
        except Exception as exc:  # noqa: BLE001 - recorded so the assertion shows it
            r = f"{type(exc).__name__}: {exc}"
        with lock:
            outcomes.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(outcomes)) == ["ok", "refused"], outcomes
    assert outcomes.count("ok") == 150 and outcomes.count("refused") == 50
    with transaction(ctx.factory) as s:
        assert ledger.balance(s, f"reseller:{who.reseller_id}") == Decimal("0.00")
        assert s.scalar(select(func.count()).select_from(Activation)) == 150
        assert (
            s.scalar(select(func.count()).select_from(Customer).where(Customer.status == "active"))
            == 150
        )


def test_concurrent_activations_on_the_apis_path_never_overdraw(
    ctx_factory: Any, backend: str
) -> None:
    """The same 200 buyers for 150 activations' worth, on the path ``POST /activations``
    takes (``run_and_view`` with the API's view); 20 of the keys sent twice at once.
    Exactly 150 activations and debits, the balance at 0.00, each key answered with one
    activation or refused on both of its sends."""
    ctx = ctx_factory(backend)
    who, pkg = buyers_for_150(ctx)
    answers: dict[int, list[int | str]] = {i: [] for i in range(200)}
    lock = threading.Lock()

    def view(s: Any, a: Any) -> Any:
        return activations.view(s, who, a)

    def send(i: int) -> None:
        req = ActivationRequest(f"c{i}", pkg, f"key-{i}")
        try:
            _, answer = activation.run_and_view(ctx.factory, who, req, view)
            assert answer is not None
            r: int | str = answer.id
        except PaymentRequired:
            r = "refused"
        except Exception as exc:  # noqa: BLE001 - recorded so the assertion shows it
            r = f"{type(exc).__name__}: {exc}"
        with lock:
            answers[i].append(r)

    sends = [*range(200), *range(20)]
    threads = [threading.Thread(target=send, args=(i,)) for i in sends]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    made = {a for got in answers.values() for a in got if isinstance(a, int)}
    odd = {i: got for i, got in answers.items() if len(set(got)) != 1}
    assert not odd, odd  # both sends of a key: the same activation, or both refused
    assert len(made) == 150
    assert sum(got[0] == "refused" for got in answers.values()) == 50
    with transaction(ctx.factory) as s:
        account = f"reseller:{who.reseller_id}"
        assert ledger.balance(s, account) == Decimal("0.00")
        assert ledger.check(s) == []
        assert set(s.scalars(select(Activation.id))) == made
        debits = s.scalar(
            select(func.count()).select_from(LedgerEntry).where(
                LedgerEntry.account == account, LedgerEntry.amount < 0)
        )  # fmt: skip
        assert debits == 150


def test_same_key_charges_once(any_ctx: Context) -> None:
    make = Factory(any_ctx)
    who, pkg, router = reseller_with(any_ctx, make)
    with transaction(any_ctx.factory) as s:
        res = s.get(Reseller, who.reseller_id).name  # type: ignore[union-attr]
        registry.create_customer(
            s,
            "t",
            {
                "username": "alice",
                "password": "p",
                "customer_type": "pppoe",
                "router": router,
                "reseller": res,
            },
        )
        ledger.topup(s, "admin", f"reseller:{who.reseller_id}", "1000")
    first = run_activation(any_ctx.factory, who, ActivationRequest("alice", pkg, "same"))
    again = run_activation(any_ctx.factory, who, ActivationRequest("alice", pkg, "same"))
    assert first == (first[0], True) and again == (first[0], False)
    with transaction(any_ctx.factory) as s:
        assert ledger.balance(s, f"reseller:{who.reseller_id}") == Decimal("600.00")
        c = s.scalar(select(Customer).where(Customer.username == "alice"))
        assert c.status == "active" and c.expires_at > utcnow() + timedelta(days=27)


def test_refusals_are_clear_and_change_nothing(ctx: Context, make: Factory) -> None:
    who, pkg, router = reseller_with(ctx, make)
    other = make.reseller()
    private = make.package("home", name="Secret", visibility="private")
    hs = make.package(make.master(name="hs", customer_type="hotspot"), name="HS")
    with transaction(ctx.factory) as s:
        res = s.get(Reseller, who.reseller_id).name  # type: ignore[union-attr]
        registry.create_customer(
            s,
            "t",
            {
                "username": "mine",
                "password": "p",
                "customer_type": "pppoe",
                "router": router,
                "reseller": res,
            },
        )
        registry.create_customer(
            s,
            "t",
            {
                "username": "theirs",
                "password": "p",
                "customer_type": "pppoe",
                "router": router,
                "reseller": other,
            },
        )
        ledger.topup(s, "admin", f"reseller:{who.reseller_id}", "100")
        cust = registry.create_customer(
            s,
            "t",
            {"username": "self", "password": "p", "customer_type": "pppoe", "router": router},
        )
        me = Principal("customer", customer_id=cust.id)
    cases = [
        (
            who,
            ActivationRequest("mine", pkg, "k1"),
            PaymentRequired,
            "has 100.00 BDT, the package costs 400.00 BDT",
        ),
        (who, ActivationRequest("theirs", pkg, "k2"), NotFound, "no customer named 'theirs'"),
        (who, ActivationRequest("mine", private, "k3"), NotFound, "is assigned to you"),
        (ADMIN, ActivationRequest("mine", hs, "k4"), ValidationError, "is for hotspot customers"),
        (me, ActivationRequest("self", private, "k5"), NotFound, "no public package"),
        (me, ActivationRequest("mine", pkg, "k6"), NotFound, "no customer named 'mine'"),
    ]
    for principal, req, exc_type, message in cases:
        with pytest.raises(exc_type, match=message):
            run_activation(ctx.factory, principal, req)
    with transaction(ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(Activation)) == 0
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 1


def test_recharge_card_redeems_once_and_pays_for_a_public_package(
    ctx: Context, make: Factory
) -> None:
    router = make.router(None, mode="radius")
    pkg = make.package(
        make.master(name="home"), name="Home 10", customer_price="500", visibility="public"
    )
    with transaction(ctx.factory) as s:
        cust = registry.create_customer(
            s,
            "t",
            {"username": "alice", "password": "p", "customer_type": "pppoe", "router": router},
        )
        [(serial, pin)] = cards.generate(s, 1, "500", 30, "batch1")
        me = Principal("customer", customer_id=cust.id)
    run_activation(
        ctx.factory,
        me,
        ActivationRequest("alice", pkg, "buy-1", payer="card", card_serial=serial, card_pin=pin),
    )
    with pytest.raises(ValidationError, match="already redeemed"), transaction(ctx.factory) as s:
        cards.redeem(s, me, "alice", serial, pin)
    with transaction(ctx.factory) as s:
        assert ledger.balance(s, f"customer:{cust.id}") == Decimal("0.00")
        kinds = [e.kind for e in ledger.entries(s, f"customer:{cust.id}")]
        assert kinds == ["card", "activation"]


def _open_session(ctx: Context, username: str, ip: str = "10.1.0.9") -> None:
    with transaction(ctx.factory) as s:
        s.execute(
            insert(radacct).values(
                acctsessionid="81a00001",
                acctuniqueid=f"u-{username}",
                username=username,
                nasipaddress="127.0.0.1",
                acctstarttime=utcnow(),
                framedipaddress=ip,
            )
        )


def test_upgrade_sends_coa_with_the_new_rate(ctx: Context, make: Factory, coa: CoaServer) -> None:
    router = make.router(None, mode="radius", coa_port=coa.port, host="127.0.0.1")
    slow = make.package(make.master(name="slow", rate_down="5M", rate_up="1M"), name="Slow")
    fast = make.package(make.master(name="fast", rate_down="50M", rate_up="10M"), name="Fast")
    make.customer(None, router, username="alice")
    run_activation(ctx.factory, ADMIN, ActivationRequest("alice", slow, "a1"))
    _open_session(ctx, "alice")
    act_id, _ = run_activation(ctx.factory, ADMIN, ActivationRequest("alice", fast, "a2"))
    with transaction(ctx.factory) as s:
        assert activations.get(s, ADMIN, act_id).model_dump()["status"] == "pending"
    assert outbox.drain(ctx.factory, ctx.settings)["done"] >= 1
    [(code, attrs)] = coa.received
    assert code == "CoA-Request"
    assert attrs["Mikrotik-Rate-Limit"] == ["10M/50M"] and attrs["User-Name"] == ["alice"]
    assert attrs["Acct-Session-Id"] == ["81a00001"] and attrs["Framed-IP-Address"] == ["10.1.0.9"]
    with transaction(ctx.factory) as s:
        assert activations.get(s, ADMIN, act_id).model_dump()["status"] == "applied"


def test_expiry_cuts_off_and_disconnects_and_reactivation_restores(
    ctx: Context, make: Factory, coa: CoaServer
) -> None:
    router = make.router(None, mode="radius", coa_port=coa.port, host="127.0.0.1")
    pkg = make.package(make.master(name="home"), name="Home")
    make.customer(None, router, username="alice")
    run_activation(ctx.factory, ADMIN, ActivationRequest("alice", pkg, "a1"))
    _open_session(ctx, "alice")
    assert activation.expire_due(ctx.factory, now=utcnow() + timedelta(days=40)) == 1
    outbox.drain(ctx.factory, ctx.settings)
    assert [c for c, _ in coa.received] == ["Disconnect-Request"]
    with transaction(ctx.factory) as s:
        groups = (
            s.execute(select(radusergroup.c.groupname).where(radusergroup.c.username == "alice"))
            .scalars()
            .all()
        )
        assert groups == [ctx.settings.expired_group]
    run_activation(ctx.factory, ADMIN, ActivationRequest("alice", pkg, "a2"))
    with transaction(ctx.factory) as s:
        groups = (
            s.execute(select(radusergroup.c.groupname).where(radusergroup.c.username == "alice"))
            .scalars()
            .all()
        )
        assert groups == ["home"]


def test_local_router_down_during_activation_gets_the_work_when_back(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    router = make.router(sim, mode="local")
    pkg = make.package(make.master(name="home"), name="Home")
    make.customer(None, router, username="alice", status="new")
    assert outbox.drain(ctx.factory, ctx.settings)["done"] >= 1  # the registry's own sync
    sim.refuse = True
    act_id, _ = run_activation(ctx.factory, ADMIN, ActivationRequest("alice", pkg, "a1"))
    counts = outbox.drain(ctx.factory, ctx.settings)
    assert counts["retry"] >= 1 and counts["done"] == 0
    with transaction(ctx.factory) as s:
        view = activations.get(s, ADMIN, act_id).model_dump()
        assert view["status"] == "pending" and "cannot connect" in (view["error"] or "")
        s.execute(update(Outbox).values(next_attempt_at=utcnow()))  # skip the backoff wait
    sim.refuse = False
    assert outbox.drain(ctx.factory, ctx.settings)["done"] >= 1
    assert [(x["name"], x["disabled"]) for x in sim.items("/ppp/secret")] == [("alice", "false")]
    with transaction(ctx.factory) as s:
        assert activations.get(s, ADMIN, act_id).model_dump()["status"] == "applied"
    assert outbox.drain(ctx.factory, ctx.settings) == {"done": 0, "retry": 0, "failed": 0}
    assert len(sim.items("/ppp/secret")) == 1


def test_worker_killed_between_commit_and_apply_applies_once(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    router = make.router(sim, mode="local")
    pkg = make.package(make.master(name="home"), name="Home")
    make.customer(None, router, username="alice", status="new")
    run_activation(ctx.factory, ADMIN, ActivationRequest("alice", pkg, "a1"))
    # A worker claimed the work and died before applying: the row is 'running' with a lease.
    claimed = outbox._claim(ctx.factory, 100)
    assert claimed
    assert outbox.drain(ctx.factory, ctx.settings)["done"] == 0  # still leased
    with transaction(ctx.factory) as s:
        s.execute(
            update(Outbox)
            .where(Outbox.status == "running")
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    assert outbox.drain(ctx.factory, ctx.settings)["done"] == len(claimed)
    assert outbox.drain(ctx.factory, ctx.settings)["done"] == 0
    assert [x["name"] for x in sim.items("/ppp/secret")] == ["alice"]
    sim.reset_stats()
    with transaction(ctx.factory) as s:
        s.execute(
            update(Outbox).values(status="pending", next_attempt_at=utcnow())
        )  # replay everything
    outbox.drain(ctx.factory, ctx.settings)
    assert sim.stats.writes == 0 and len(sim.items("/ppp/secret")) == 1


def test_other_customer_runs_the_configured_action(ctx_factory: Any, tmp_path: Any) -> None:
    out = tmp_path / "action.json"
    ctx = ctx_factory("sqlite", other_action_command=f"sh -c 'cat > {out}'")
    make = Factory(ctx)
    pkg = make.package(
        make.master(name="ftth", customer_type="other", pool_name=None, pool_ranges=None),
        name="Fiber",
    )
    make.customer(None, None, username="onu1", customer_type="other", status="new")
    run_activation(ctx.factory, ADMIN, ActivationRequest("onu1", pkg, "a1"))
    assert outbox.drain(ctx.factory, ctx.settings)["done"] == 1
    import json

    body = json.loads(out.read_text())
    assert body["customer"] == "onu1" and body["package"] == "Fiber" and body["status"] == "active"


def test_card_pins_are_stored_keyed_and_per_card(ctx: Context, make: Factory) -> None:
    """A copy of the database alone is no way to try PINs: none of the plain hashes an
    attacker would compute matches, and the same PIN differs from card to card."""
    import hashlib

    from provisioner.models import RechargeCard

    router = make.router(None, mode="radius")
    make.customer(None, router, username="alice")
    with transaction(ctx.factory) as s:
        [(serial, pin)] = cards.generate(s, 1, "100", 30, "b")
        stored = s.scalar(select(RechargeCard.pin_hash).where(RechargeCard.serial == serial))
    plain = {hashlib.sha256(x.encode()).hexdigest() for x in (pin, serial + pin, pin + serial)}
    assert stored not in plain and len(stored) == 64
    assert cards.hash_pin("A1", "12345") != cards.hash_pin("B2", "12345")
    with transaction(ctx.factory) as s:
        assert cards.redeem(s, ADMIN, "alice", serial, pin) == Decimal("100.00")


def test_a_card_batch_is_bounded(ctx: Context) -> None:
    from provisioner.models import RechargeCard

    with (
        pytest.raises(ValidationError, match="at most 10000 cards per batch"),
        transaction(ctx.factory) as s,
    ):
        cards.generate(s, cards.MAX_CARDS + 1, "100", 30, "big")
    with transaction(ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(RechargeCard)) == 0


# ---- found in review ----------------------------------------------------------


def _two_resellers(ctx: Context, make: Factory) -> tuple[Principal, Principal, str]:
    """Resellers A and B, each with a customer (alice, bob) and 1000 on its balance."""
    router = make.router(None, mode="radius")
    pkg = make.package(make.master(name="home"), name="Home", operator_price="400")
    who = []
    with transaction(ctx.factory) as s:
        for name, customer in (("resA", "alice"), ("resB", "bob")):
            registry.create_reseller(s, "t", {"name": name})
            registry.assign_package(s, "t", name, pkg)
            registry.create_customer(
                s,
                "t",
                {
                    "username": customer,
                    "password": "p",
                    "customer_type": "pppoe",
                    "router": router,
                    "reseller": name,
                },
            )
            rid = s.scalar(select(Reseller.id).where(Reseller.name == name))
            ledger.topup(s, "admin", f"reseller:{rid}", "1000")
            who.append(Principal("reseller", reseller_id=rid))
    return who[0], who[1], pkg


def test_another_callers_idempotency_key_is_refused_not_replayed(
    any_ctx: Context,
) -> None:
    make = Factory(any_ctx)
    a, b, pkg = _two_resellers(any_ctx, make)
    first, created = run_activation(any_ctx.factory, a, ActivationRequest("alice", pkg, "order-1"))
    assert created
    # Reseller B happens to (or on purpose) send A's key for its own customer: it must
    # neither get A's activation (A's customer, price) nor have its own silently dropped.
    with pytest.raises(Conflict, match="idempotency key"):
        run_activation(any_ctx.factory, b, ActivationRequest("bob", pkg, "order-1"))
    with transaction(any_ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(Activation)) == 1
        assert ledger.balance(s, f"reseller:{b.reseller_id}") == Decimal("1000.00")
        bob = s.scalar(select(Customer).where(Customer.username == "bob"))
        assert bob is not None and bob.status == "new"
    # The caller that made it still replays it, and is charged once.
    again = run_activation(any_ctx.factory, a, ActivationRequest("alice", pkg, " order-1 "))
    assert again == (first, False)
    with transaction(any_ctx.factory) as s:
        assert ledger.balance(s, f"reseller:{a.reseller_id}") == Decimal("600.00")


def test_an_unknown_payer_is_refused_not_granted_for_free(ctx: Context, make: Factory) -> None:
    a, _, pkg = _two_resellers(ctx, make)
    admin = Principal("admin", name="test")
    # A typo for "reseller" must not fall through to the admin's free grant.
    with pytest.raises(ValidationError, match="payer: must be one of"):
        run_activation(ctx.factory, admin, ActivationRequest("alice", pkg, "k1", payer="resellr"))
    with transaction(ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(Activation)) == 0
        alice = s.scalar(select(Customer).where(Customer.username == "alice"))
        assert alice is not None and alice.status == "new"
    # The spelled-out payers still work: "reseller" charges, "admin" grants.
    run_activation(ctx.factory, admin, ActivationRequest("alice", pkg, "k2", payer="reseller"))
    with transaction(ctx.factory) as s:
        assert ledger.balance(s, f"reseller:{a.reseller_id}") == Decimal("600.00")


def test_a_suspended_customer_cannot_lift_its_suspension_by_buying(
    ctx: Context, make: Factory
) -> None:
    router = make.router(None, mode="radius")
    pkg = make.package(make.master(name="home"), name="Home", visibility="public")
    make.customer(None, router, username="carol", status="suspended")
    with transaction(ctx.factory) as s:
        carol = s.scalar(select(Customer).where(Customer.username == "carol"))
        assert carol is not None
        ledger.topup(s, "admin", f"customer:{carol.id}", "1000")
        me = Principal("customer", customer_id=carol.id)
    with pytest.raises(Forbidden, match="suspended"):
        run_activation(ctx.factory, me, ActivationRequest("carol", pkg, "k1"))
    with transaction(ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(Activation)) == 0
        assert ledger.balance(s, f"customer:{me.customer_id}") == Decimal("1000.00")
        carol = s.scalar(select(Customer).where(Customer.username == "carol"))
        assert carol is not None and carol.status == "suspended"
    # An expired customer renews itself, as before.
    with transaction(ctx.factory) as s:
        registry.update_customer(s, "t", "carol", {"status": "expired"})
    run_activation(ctx.factory, me, ActivationRequest("carol", pkg, "k2"))
    with transaction(ctx.factory) as s:
        assert ledger.balance(s, f"customer:{me.customer_id}") == Decimal("500.00")


def test_a_key_reused_for_another_request_is_refused(any_ctx: Context) -> None:
    """Same key, same request: the first activation, charged once. Same key, another
    customer, package or payer: 409 naming idempotency_key, and nothing is written."""
    make = Factory(any_ctx)
    router = make.router(None, mode="radius")
    pkg = make.package(make.master(name="home"), name="Home")
    other = make.package(make.master(name="fast"), name="Fast")
    make.customer(None, router, username="alice", status="new")
    make.customer(None, router, username="bob", status="new")
    first = run_activation(any_ctx.factory, ADMIN, ActivationRequest("alice", pkg, "k1"))
    assert run_activation(any_ctx.factory, ADMIN, ActivationRequest("alice", pkg, "k1")) == (
        first[0],
        False,
    )
    for req in (
        ActivationRequest("bob", pkg, "k1"),
        ActivationRequest("alice", other, "k1"),
        ActivationRequest("alice", pkg, "k1", payer="customer"),
    ):
        with pytest.raises(Conflict) as err:
            run_activation(any_ctx.factory, ADMIN, req)
        assert err.value.field == "idempotency_key"
    with transaction(any_ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(Activation)) == 1
        assert s.get(Customer, 2).status == "new"


def test_activations_compile_each_statement_once(any_ctx: Context) -> None:
    """Every statement an activation sends in a batch is built once: a statement object
    made per call would be compiled at every activation (and fill the batch's cache)."""
    from provisioner import batch

    make = Factory(any_ctx)
    who, pkg, router = reseller_with(any_ctx, make, price="1")
    with transaction(any_ctx.factory) as s:
        res = s.get(Reseller, who.reseller_id).name  # type: ignore[union-attr]
        for i in range(6):
            registry.create_customer(s, "t", {
                "username": f"k{i}", "password": "p", "customer_type": "pppoe",
                "router": router, "reseller": res,
            })  # fmt: skip
        ledger.topup(s, "admin", f"reseller:{who.reseller_id}", "100")
    for i in range(3):  # the first ones compile what they send
        run_activation(any_ctx.factory, who, ActivationRequest(f"k{i}", pkg, f"warm-{i}"))
    shapes = set(batch._cache)
    for i in range(3, 6):
        run_activation(any_ctx.factory, who, ActivationRequest(f"k{i}", pkg, f"more-{i}"))
    assert set(batch._cache) == shapes
    with transaction(any_ctx.factory) as s:
        assert ledger.balance(s, f"reseller:{who.reseller_id}") == Decimal("94.00")
