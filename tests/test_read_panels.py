"""The reads the web panels added to the read side: a customer search with filters and
pages (scoped like every read), a buyer's quote, a master change's preview (which saves
nothing), card batches and router names."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from provisioner import cards, ledger, registry
from provisioner.auth import Principal
from provisioner.context import Context
from provisioner.db import reading, transaction
from provisioner.errors import Forbidden, NotFound, ValidationError
from provisioner.models import MasterPackage, Outbox, Reseller
from provisioner.read import ADMIN, activations, customers, masters, routers
from provisioner.read import cards as card_batches
from tests.support.factories import Factory


@pytest.fixture
def world(ctx: Context, make: Factory) -> dict[str, Principal]:
    router = make.router(None)
    master = make.master(name="m")
    public = make.package(master, name="Public", customer_price="500", operator_price="400")
    mine = make.package(master, name="Mine", visibility="private")
    with transaction(ctx.factory) as s:
        for name in ("R1", "R2"):
            registry.create_reseller(s, "t", {"name": name})
        registry.assign_package(s, "t", "R1", mine, "350")
        ids = {r.name: r.id for r in s.scalars(select(Reseller))}
    for i in range(30):
        make.customer(mine if i < 12 else None, router, username=f"user-{i:02d}",
                      reseller="R1" if i % 2 else "R2", status="new")  # fmt: skip
    make.customer(public, router, username="walk_in", status="new")
    with transaction(ctx.factory) as s:
        ledger.topup(s, "t", "reseller:R1", "1000")
        ledger.topup(s, "t", "customer:walk_in", "300")
    with reading(ctx.factory) as s:
        walk = customers.get(s, ADMIN, "walk_in")
    return {
        "R1": Principal("reseller", reseller_id=ids["R1"]),
        "walk": Principal("customer", customer_id=walk.id),
    }


def test_customer_search_pages_and_filters(ctx: Context, world: dict[str, Principal]) -> None:
    with reading(ctx.factory) as s:
        page = customers.search(s, ADMIN, q="USER", limit=10, offset=20)
        assert page.total == 30 and [c.username for c in page.rows][0] == "user-20"
        assert len(page.rows) == 10
        assert customers.search(s, ADMIN, q="_").total == 1  # LIKE wildcards are text
        assert customers.search(s, ADMIN, reseller="R2", package="Mine").total == 6
        assert customers.search(s, ADMIN, status="active").total == 0
        with pytest.raises(ValidationError):
            customers.search(s, ADMIN, status="gone")
        # A reseller searches its own customers; another's package is not there.
        mine = customers.search(s, world["R1"], limit=200)
        assert mine.total == 15 and all(c.reseller == "R1" for c in mine.rows)
        with pytest.raises(NotFound):
            customers.search(s, world["R1"], package="Public")
        with pytest.raises(Forbidden):
            customers.search(s, world["R1"], reseller="R2")


def test_quote_is_the_price_the_listing_shows(ctx: Context, world: dict[str, Principal]) -> None:
    with reading(ctx.factory) as s:
        q = activations.quote(s, world["R1"], "Mine")
        assert (q.price, q.balance, q.balance_after, q.enough) == (
            "350.00",
            "1000.00",
            "650.00",
            True,
        )
        q = activations.quote(s, world["walk"], "Public")
        assert (q.price, q.balance_after, q.enough) == ("500.00", "-200.00", False)
        with pytest.raises(NotFound):
            activations.quote(s, world["walk"], "Mine")  # private
        with pytest.raises(Forbidden):
            activations.quote(s, ADMIN, "Mine")  # an admin has no balance


def test_master_preview_names_what_a_change_sets_off_and_saves_nothing(
    ctx: Context, world: dict[str, Principal]
) -> None:
    with reading(ctx.factory) as s:
        before = (
            s.scalar(select(func.count()).select_from(Outbox)),
            s.scalar(select(MasterPackage.rate_down)),
        )
    out = masters.preview(ctx.factory, ADMIN, "m", {"rate_down": "20M"})
    assert out.rate_before != out.rate_after and out.routers == ["r1"]
    assert out.coa == [] and out.disconnect == []  # nobody is online
    with reading(ctx.factory) as s:
        after = (
            s.scalar(select(func.count()).select_from(Outbox)),
            s.scalar(select(MasterPackage.rate_down)),
        )
    assert after == before
    with pytest.raises(ValidationError):
        masters.preview(ctx.factory, ADMIN, "m", {"rate_down": "fast"})
    with pytest.raises(Forbidden):
        masters.preview(ctx.factory, world["R1"], "m", {"rate_down": "20M"})


def test_card_batches_and_router_names(ctx: Context, world: dict[str, Principal]) -> None:
    with transaction(ctx.factory) as s:
        ((serial, pin), _) = cards.generate(s, 2, "100", 30, "shop")
    with transaction(ctx.factory) as s:
        cards.redeem(s, ADMIN, "walk_in", serial, pin)
    with reading(ctx.factory) as s:
        (batch,) = card_batches.batches(s, ADMIN)
        assert (batch.batch, batch.value, batch.cards, batch.redeemed) == ("shop", "100.00", 2, 1)
        assert routers.names(s, world["R1"]) == ["r1"]
        with pytest.raises(Forbidden):
            routers.names(s, world["walk"])
        assert ledger.balance(s, f"customer:{world['walk'].customer_id}") == Decimal("400.00")
