"""Who may see what (``provisioner.access``): one rule per entity, proved per role.

The API, the CLI (as the admin) and activation all resolve customers, packages and
activations through these functions; here each rule is checked for every role.
"""

from __future__ import annotations

from typing import Any

import pytest

from provisioner import access, registry
from provisioner.activation import ActivationRequest, run_activation
from provisioner.auth import Principal
from provisioner.context import Context
from provisioner.db import reading, transaction
from provisioner.errors import Forbidden, NotFound
from provisioner.models import Activation, Customer, Reseller
from provisioner.read import activations, customers, packages
from provisioner.refs import as_param
from tests.support.factories import Factory


@pytest.fixture
def isp(ctx: Context) -> dict[str, Any]:
    make = Factory(ctx)
    router = make.router(None, mode="radius")
    master = make.master(name="home")
    public = make.package(master, name="Public", visibility="public")
    private = make.package(master, name="Private", visibility="private")
    named_2 = make.package(master, name="2", visibility="private")  # a name that looks like an id
    with transaction(ctx.factory) as s:
        for r in ("resA", "resB"):
            registry.create_reseller(s, "t", {"name": r})
        registry.assign_package(s, "t", "resA", private, "350")
        registry.assign_package(s, "t", "resB", public)
    make.customer(None, router, username="a1", reseller="resA", status="new")
    make.customer(None, router, username="b1", reseller="resB", status="new")
    make.customer(None, router, username="lone", status="new")
    with transaction(ctx.factory) as s:
        ids = {r.name: r.id for r in s.query(Reseller)}
        cids = {c.username: c.id for c in s.query(Customer)}
    run_activation(ctx.factory, Principal("admin"), ActivationRequest("a1", private, "k-a1"))
    run_activation(ctx.factory, Principal("admin"), ActivationRequest("b1", public, "k-b1"))
    with transaction(ctx.factory) as s:
        acts = {s.get(Customer, a.customer_id).username: a.id for a in s.query(Activation)}
    return {
        "ctx": ctx, "public": public, "private": private, "named_2": named_2, "acts": acts,
        "admin": Principal("admin", name="t"),
        "resA": Principal("reseller", reseller_id=ids["resA"]),
        "resB": Principal("reseller", reseller_id=ids["resB"]),
        "a1": Principal("customer", customer_id=cids["a1"]),
        "b1": Principal("customer", customer_id=cids["b1"]),
    }  # fmt: skip


# Which customers each caller may see (and act for).
CUSTOMERS = {
    "admin": {"a1", "b1", "lone"},
    "resA": {"a1"},
    "resB": {"b1"},
    "a1": {"a1"},
    "b1": {"b1"},
}


@pytest.mark.parametrize("who", sorted(CUSTOMERS))
def test_one_rule_answers_which_customers_a_caller_sees(isp: dict[str, Any], who: str) -> None:
    p = isp[who]
    with reading(isp["ctx"].factory) as s:
        for name in ("a1", "b1", "lone"):
            if name in CUSTOMERS[who]:
                assert access.customer(s, p, name).username == name
            else:
                with pytest.raises(NotFound, match=f"no customer named '{name}'"):
                    access.customer(s, p, name)
        listed = {c.username for c in customers.list_(s, p)}
        assert listed == CUSTOMERS[who]
        seen_acts = {a.customer for a in activations.list_(s, p)}
        assert seen_acts == CUSTOMERS[who] & {"a1", "b1"}
        for owner, act_id in isp["acts"].items():
            if owner in CUSTOMERS[who]:
                assert activations.get(s, p, act_id).customer == owner
            else:
                with pytest.raises(NotFound):
                    activations.get(s, p, act_id)


# Which packages each caller may see (and so buy), and at what operator price.
PACKAGES: dict[str, dict[str, str | None]] = {
    "admin": {"Public": "400.00", "Private": "400.00", "2": "400.00"},
    "resA": {"Private": "350.00"},
    "resB": {"Public": "400.00"},
    "a1": {"Public": None},  # a customer sees no operator price
    "b1": {"Public": None},
}


@pytest.mark.parametrize("who", sorted(PACKAGES))
def test_one_rule_answers_which_packages_a_caller_sees(isp: dict[str, Any], who: str) -> None:
    p = isp[who]
    with reading(isp["ctx"].factory) as s:
        listed = {pk.name: getattr(pk, "operator_price", None) for pk in packages.list_(s, p)}
        assert listed == PACKAGES[who]
        for name in ("Public", "Private"):
            if name in PACKAGES[who]:
                assert access.package(s, p, name).name == name
            else:
                with pytest.raises(NotFound, match=f"no package named '{name}'"):
                    access.package(s, p, name)
        # "2" is a package's name and another's id: it means the name, for everyone.
        if "2" in PACKAGES[who]:
            assert access.package(s, p, "2").name == "2"
        else:
            with pytest.raises(NotFound, match="no package named '2'"):
                access.package(s, p, "2")
        if "Private" in PACKAGES[who]:
            assert access.package(s, p, "id:2").name == "Private"
        # The same rule as the one statement an activation reads it with.
        for ref in ("Public", "Private", "2", "id:2", "id:99"):
            try:
                allowed: str | None = access.package(s, p, ref).name
            except NotFound:
                allowed = None
            assert _buyable(s, p, ref) == allowed, ref


def _buyable(s: Any, p: Principal, ref: str) -> str | None:
    """The package ``ref`` as ``access.package_statement`` finds it for ``p`` (an
    activation's read)."""
    by_id, value = as_param(ref)
    role = p.role if p.role in ("admin", "reseller") else "customer"
    me = {"me": p.reseller_id} if role == "reseller" else {}
    row = s.execute(access.package_statement(role, by_id), {"ref": value, **me}).first()
    return row.p_name if row else None


def test_a_reference_is_resolved_by_the_code_that_checks_it(isp: dict[str, Any]) -> None:
    """resA is assigned "Private" (id 2). "2" is the name of a package resA was not
    given: it is refused, never bound (it used to pass the scope check as Private's id
    and then bind the package named "2"). ``id:2`` is the explicit id form."""
    from provisioner.registry.customers import reseller_write

    with transaction(isp["ctx"].factory) as s:
        assert access.package(s, isp["admin"], isp["private"]).id == 2  # the seed's order
        with pytest.raises(Forbidden, match="not assigned to you"):
            reseller_write(s, isp["resA"], {"package": "2"})
        assert reseller_write(s, isp["resA"], {"package": "id:2"})["package"] == isp["private"]
        with pytest.raises(Forbidden, match="not assigned to you"):
            reseller_write(s, isp["resB"], {"package": "id:2"})


def test_own_account_is_the_callers_own(isp: dict[str, Any]) -> None:
    assert access.own_account(isp["resA"]) == f"reseller:{isp['resA'].reseller_id}"
    assert access.own_account(isp["a1"]) == f"customer:{isp['a1'].customer_id}"
    with pytest.raises(Forbidden):
        access.own_account(isp["admin"])
