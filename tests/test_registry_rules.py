"""Registry rules found in review: money history is never deleted, pinned addresses stay
out of the router's own pools, MAC addresses are real and bound once."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from sqlalchemy import func, select

from provisioner import ledger, registry
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.errors import ProvisionerError
from provisioner.models import AddressHint, Customer, Reseller
from tests.support.concurrency import at_once
from tests.support.factories import Factory


def refused(ctx: Context, fn: Any, *args: Any) -> ProvisionerError:
    with pytest.raises(ProvisionerError) as info, transaction(ctx.factory) as s:
        fn(s, "test", *args)
    return info.value


def test_an_account_with_money_history_is_never_deleted(any_ctx: Context) -> None:
    """Else (SQLite reuses the highest id) the next customer would inherit its balance."""
    make = Factory(any_ctx)
    router = make.router(None, mode="radius")
    make.customer(None, router, username="old", status="new")
    res = make.reseller(name="north")
    with transaction(any_ctx.factory) as s:
        cid = s.scalar(select(Customer.id).where(Customer.username == "old"))
        rid = s.scalar(select(Reseller.id).where(Reseller.name == res))
        ledger.topup(s, "admin", f"customer:{cid}", "700")
        ledger.topup(s, "admin", f"reseller:{rid}", "100")
    err = refused(any_ctx, registry.delete_customer, "old")
    assert "money history (0 activations, 1 ledger entries, 0 cards redeemed)" in str(err)
    assert "suspend the customer instead" in str(err)
    err = refused(any_ctx, registry.delete_reseller, res)
    assert (
        str(err)
        == "reseller 'north' has 1 ledger entries, which are kept; unassign its packages instead"
    )
    with transaction(any_ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 1
        assert ledger.balance(s, f"customer:{cid}") == 700
    make.customer(None, router, username="fresh", status="new")
    with transaction(any_ctx.factory) as s:
        registry.delete_customer(s, "test", "fresh")  # no history: goes


def test_a_pinned_address_must_not_be_in_a_pool_the_router_hands_out(
    ctx: Context, make: Factory
) -> None:
    router = make.router(None, mode="radius")
    make.master(name="home", pool_name="pool-home", pool_ranges="10.9.0.2-10.9.0.254")
    biz = make.package(
        make.master(name="biz", customer_type="static", pool_name="pool-biz",
                    pool_ranges="10.30.0.2-10.30.0.9")
    )  # fmt: skip
    data = {"password": "p", "customer_type": "static", "router": router, "package": biz}
    err = refused(ctx, registry.create_customer, {**data, "username": "a", "static_ip": "10.9.0.5"})
    assert err.field == "static_ip"
    assert "10.9.0.5 is inside pool 'pool-home' of master package 'home'" in str(err)
    err = refused(ctx, registry.create_customer, {**data, "username": "b", "static_ip": "0.0.0.0"})
    assert (err.field, str(err)) == (
        "static_ip",
        "static_ip: 0.0.0.0 cannot be a customer's address",
    )
    with transaction(ctx.factory) as s:  # a static pool's own address, or none at all, is fine
        assert (
            registry.create_customer(
                s, "t", {**data, "username": "c", "static_ip": "10.30.0.7"}
            ).static_ip
            == "10.30.0.7"
        )
        assert registry.create_customer(s, "t", {**data, "username": "d"}).static_ip == "10.30.0.2"
    with transaction(ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 2


@pytest.mark.parametrize(
    ("given", "stored"),
    [("aa:bb:cc:dd:ee:0f", "AA:BB:CC:DD:EE:0F"), ("AA-BB-CC-DD-EE-0F", "AA:BB:CC:DD:EE:0F"),
     ("aabb.ccdd.ee0f", "AA:BB:CC:DD:EE:0F"), ("aabbccddee0f", "AA:BB:CC:DD:EE:0F")],
)  # fmt: skip
def test_mac_spellings_are_stored_as_routeros_prints_them(
    ctx: Context, make: Factory, given: str, stored: str
) -> None:
    router = make.router(None, mode="local")
    make.customer(None, router, username="guest", customer_type="hotspot", mac_address=given)
    with transaction(ctx.factory) as s:
        assert s.scalar(select(Customer.mac_address)) == stored


def test_a_mac_must_be_one_and_bound_once(ctx: Context, make: Factory) -> None:
    router = make.router(None, mode="local")
    data = {"password": "p", "customer_type": "hotspot", "router": router}
    err = refused(
        ctx, registry.create_customer, {**data, "username": "a", "mac_address": "not-a-mac"}
    )
    assert (err.field, str(err)) == (
        "mac_address",
        "mac_address: 'not-a-mac' is not a MAC address (like AA:BB:CC:DD:EE:FF)",
    )
    make.customer(
        None, router, username="b", customer_type="hotspot", mac_address="AA:BB:CC:DD:EE:01"
    )
    err = refused(
        ctx, registry.create_customer, {**data, "username": "c", "mac_address": "aa-bb-cc-dd-ee-01"}
    )
    assert (err.field, str(err)) == (
        "mac_address",
        "mac_address: AA:BB:CC:DD:EE:01 is already bound to customer 'b'",
    )
    with transaction(ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 1


def test_a_credential_change_is_audited_as_changed_never_with_its_value(ctx: Context) -> None:
    from provisioner.models import AuditLog

    make = Factory(ctx)
    router = make.router(None, mode="radius", password="old-api-pw", radius_secret="old-sec")
    with transaction(ctx.factory) as s:
        registry.update_router(s, "admin", router, {"radius_secret": "new-sec", "coa_port": 3800})
        registry.update_router(s, "admin", router, {"radius_secret": "new-sec"})  # no change
    with transaction(ctx.factory) as s:
        rows = (
            s.query(AuditLog)
            .filter_by(entity="routers", action="update")
            .order_by(AuditLog.id)
            .all()
        )
        changed, unchanged = rows[0], rows[1]
        assert changed.before["radius_secret"] == "(redacted)"
        assert changed.after["radius_secret"] == "(changed)"
        assert changed.after["password"] == "(redacted)"  # untouched
        assert unchanged.after["radius_secret"] == "(redacted)"
        text = repr([r.before for r in rows] + [r.after for r in rows])
        assert "sec" not in text.replace("radius_secret", "") and "old-api-pw" not in text


def static_pool(ctx: Context, ranges: str) -> tuple[dict[str, Any], Any]:
    """A static package "biz" on pool "pool-biz" with these ranges: a new customer's data,
    and ``new(username, **fields)``, which creates one and answers its address."""
    make = Factory(ctx)
    router = make.router(None, mode="radius")
    biz = make.package(
        make.master(name="biz", customer_type="static", pool_name="pool-biz", pool_ranges=ranges)
    )
    data = {"password": "p", "customer_type": "static", "router": router, "package": biz}

    def new(name: str, **kw: Any) -> str:
        with transaction(ctx.factory) as s:
            return str(registry.create_customer(s, "t", {**data, "username": name, **kw}).static_ip)

    return data, new


def test_a_static_customer_gets_the_lowest_free_address_of_its_pool(any_ctx: Context) -> None:
    """The search (in SQL on PostgreSQL, walked on SQLite) skips addresses reserved or
    pinned, fills a gap before the end, crosses from one range to the next, and says when
    the pool is full."""
    data, new = static_pool(any_ctx, "10.30.1.250-10.30.2.1, 10.30.0.9-10.30.0.10")
    assert new("pinned", static_ip="10.30.1.251") == "10.30.1.251"  # out of turn
    assert [new(n) for n in "abc"] == ["10.30.0.9", "10.30.0.10", "10.30.1.250"]
    assert new("d") == "10.30.1.252"  # .251 is pinned
    with transaction(any_ctx.factory) as s:
        registry.delete_customer(s, "test", "c")
    assert new("e") == "10.30.1.250"  # the gap first
    assert [new(n) for n in "fghij"] == [
        "10.30.1.253",
        "10.30.1.254",
        "10.30.1.255",
        "10.30.2.0",
        "10.30.2.1",
    ]
    err = refused(any_ctx, registry.create_customer, {**data, "username": "k"})
    assert "pool 'pool-biz' of master package 'biz' has no free address" in str(err)


def test_an_address_freed_or_a_pool_widened_is_given_first(any_ctx: Context) -> None:
    """PostgreSQL starts each search from the pool's hint (every address below it in use):
    an address freed below it (a customer's address changed, a customer deleted) moves
    it back, and new ranges are searched from their first address. SQLite walks the pool
    and must give the same answers."""
    _, new = static_pool(any_ctx, "10.40.0.10-10.40.0.20")

    def hint() -> str | None:  # PostgreSQL's; SQLite keeps none
        with transaction(any_ctx.factory) as s:
            n = s.scalar(select(AddressHint.next).where(AddressHint.pool_name == "pool-biz"))
            return None if n is None else str(ipaddress.IPv4Address(n))

    postgres = any_ctx.engine.dialect.name == "postgresql"
    assert [new(n) for n in "abcd"] == ["10.40.0.10", "10.40.0.11", "10.40.0.12", "10.40.0.13"]
    assert hint() == ("10.40.0.14" if postgres else None)
    with transaction(any_ctx.factory) as s:  # b moves out of the pool: .11 is free again
        registry.update_customer(s, "t", "b", {"static_ip": "10.99.0.1"})
    assert hint() == ("10.40.0.11" if postgres else None)  # the trigger moved it back
    assert new("e") == "10.40.0.11"
    with transaction(any_ctx.factory) as s:
        registry.delete_customer(s, "t", "a")
    assert new("f") == "10.40.0.10"
    assert new("g") == "10.40.0.14"
    with transaction(any_ctx.factory) as s:  # a range below the old one: searched first
        registry.update_master_package(s, "t", "biz", {"pool_ranges": "10.40.0.2-10.40.0.20"})
    assert [new(n) for n in "hi"] == ["10.40.0.2", "10.40.0.3"]
    with transaction(any_ctx.factory) as s:
        rows = s.execute(select(Customer.username, Customer.static_ip)).all()
    given = [ip for _, ip in rows if ip and ip.startswith("10.40.")]
    assert len(given) == len(set(given)) == 7


def test_concurrent_allocations_and_releases_keep_the_hint_honest(ctx_factory: Any) -> None:
    """PostgreSQL: first allocations at once take the lowest addresses, one each; then
    customers deleted while others are created (the triggers moving the hint back while
    allocations move it on): no address given twice, and the next allocation still
    finds the lowest free address, so no freed one was left behind the hint."""
    ctx = ctx_factory("postgresql")
    _, new = static_pool(ctx, "10.50.0.10-10.50.0.60")

    def delete(name: str) -> None:
        with transaction(ctx.factory) as s:
            registry.delete_customer(s, "t", name)

    def addresses() -> list[int]:
        with transaction(ctx.factory) as s:
            ips = s.scalars(select(Customer.static_ip).where(Customer.static_ip.is_not(None)))
            return sorted(int(ipaddress.IPv4Address(ip)) for ip in ips)

    first = int(ipaddress.IPv4Address("10.50.0.10"))
    at_once(*(lambda n=f"a{i}": new(n) for i in range(8)))
    assert addresses() == list(range(first, first + 8))  # the lowest, one each
    at_once(
        *(lambda n=f"a{i}": delete(n) for i in (1, 3, 5)),
        *(lambda n=f"b{i}": new(n) for i in range(5)),
    )
    used = addresses()
    assert len(used) == len(set(used)) == 10
    lowest = next(n for n in range(first, first + 51) if n not in used)
    assert new("c") == str(ipaddress.IPv4Address(lowest))
