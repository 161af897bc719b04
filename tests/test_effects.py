"""What a change sets off (``provisioner.effects``): the pure rule for the "other"
adapter as a table, and every path that changes an Other customer reaching the adapter."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from provisioner import outbox, registry
from provisioner.activation import ActivationRequest, run_activation
from provisioner.auth import Principal
from provisioner.db import transaction
from provisioner.effects import CustomerState, other_action
from provisioner.sessions import Terms
from tests.support.factories import Factory

ADMIN = Principal("admin", name="test")
ONU = CustomerState(
    username="onu1", customer_type="other", router_id=None, on_router=False,
    terms=Terms("onu1", None, True), package="Fiber", status="active",
    expires_at="2027-01-01T00:00:00+00:00",
)  # fmt: skip
PAYLOAD = {"customer": "onu1", "package": "Fiber", "status": "active",
           "expires_at": "2027-01-01T00:00:00+00:00"}  # fmt: skip
REMOVED = {**PAYLOAD, "package": None, "status": "removed", "expires_at": None}


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (None, ONU, PAYLOAD),  # created active
        (replace(ONU, status="new"), ONU, PAYLOAD),  # first activation
        (None, replace(ONU, status="new"), None),  # never activated: nothing to tell yet
        (ONU, ONU, None),  # nothing it is told changed (e.g. a new password)
        (ONU, replace(ONU, status="suspended"), {**PAYLOAD, "status": "suspended"}),
        (ONU, replace(ONU, package="Fiber 2"), {**PAYLOAD, "package": "Fiber 2"}),
        (ONU, None, REMOVED),
        (ONU, replace(ONU, customer_type="pppoe"), REMOVED),  # no longer an Other customer
        (replace(ONU, customer_type="pppoe"), replace(ONU, customer_type="pppoe"), None),
    ],
)
def test_other_action(
    before: CustomerState | None, after: CustomerState | None, expected: dict[str, Any] | None
) -> None:
    assert other_action(before, after) == expected


def test_every_change_of_an_other_customer_reaches_the_adapter(
    ctx_factory: Any, backend: str, tmp_path: Path
) -> None:
    """An admin's suspension, package change and removal each run the adapter's action
    (they used to queue nothing: only activation and expiry did)."""
    out = tmp_path / "actions.jsonl"
    ctx = ctx_factory(backend, other_action_command=f"sh -c 'cat >> {out}; echo >> {out}'")
    make = Factory(ctx)
    fiber = make.master(name="ftth", customer_type="other", pool_name=None, pool_ranges=None)
    pkg = make.package(fiber, name="Fiber")
    pkg2 = make.package(fiber, name="Fiber 2")
    make.customer(None, None, username="onu1", customer_type="other", status="new")
    make.customer(pkg, None, username="onu2", customer_type="other")  # created active

    def told() -> list[dict[str, Any]]:
        counts = outbox.drain(ctx.factory, ctx.settings)
        assert counts["retry"] == counts["failed"] == 0
        lines = out.read_text().splitlines() if out.exists() else []
        out.unlink(missing_ok=True)
        return [json.loads(line) for line in lines if line.strip()]

    assert [(a["customer"], a["status"]) for a in told()] == [("onu2", "active")]
    run_activation(ctx.factory, ADMIN, ActivationRequest("onu1", pkg, "a1"))
    [first] = told()
    assert (first["customer"], first["package"], first["status"]) == ("onu1", "Fiber", "active")

    def edit(fn: Any, *args: Any) -> None:
        with transaction(ctx.factory) as s:
            fn(s, "admin", *args)

    edit(registry.update_customer, "onu1", {"status": "suspended"})
    assert told() == [{**first, "status": "suspended"}]
    edit(registry.update_customer, "onu1", {"password": "new"})
    assert told() == []  # nothing the adapter is told changed
    edit(registry.update_customer, "onu1", {"status": "active", "package": pkg2})
    assert told() == [{**first, "package": "Fiber 2"}]
    edit(registry.update_package, pkg2, {"name": "Fiber Two"})
    assert told() == [{**first, "package": "Fiber Two"}]
    edit(registry.delete_customer, "onu2")
    assert told() == [
        {"customer": "onu2", "package": None, "status": "removed", "expires_at": None}
    ]
