"""kill -9 of ``provisioner serve`` between a change's commit and its webhook's delivery:
after the restart every receiver has it, under one webhook-id, delivered once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from provisioner import webhooks
from provisioner.activation import ActivationRequest, run_activation
from provisioner.auth import Principal
from provisioner.db import reading, transaction
from provisioner.models import WebhookDelivery
from tests.support.factories import Factory
from tests.support.receiver import Receiver
from tests.test_recovery import Daemon, wait_for

ADMIN = Principal("admin", name="test")


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(ctx: Any, name: str, **settings: object) -> Daemon:
        d = Daemon(ctx, name, tmp_path / f"daemon-{name}.log", webhook_poll_seconds=0.1,
                   **settings)  # fmt: skip
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()
    for d in started:  # shown when the test failed
        print(f"---- {d.log.name}\n{d.log.read_text(errors='replace')[-4000:]}")


def test_killed_between_commit_and_delivery_delivered_after_restart_once(
    ctx_factory: Any, daemons: Callable[..., Daemon]
) -> None:
    ctx = ctx_factory("postgresql")
    held, fine = Receiver(hang=threading.Event()), Receiver()
    try:
        for rx in (held, fine):
            with transaction(ctx.factory) as s:
                rx.secret = webhooks.create(s, ADMIN, rx.url, ["activation.applied"])[1]
        make = Factory(ctx)
        router = make.router(None, mode="radius")
        make.package(make.master(name="home"), name="Home")
        user = make.customer(None, router, status="new")
        # The change commits while no daemon runs: its event waits in the database.
        act_id, _ = run_activation(ctx.factory, ADMIN, ActivationRequest(user, "Home", "k1"))
        first = daemons(ctx, "a")
        wait_for("the held receiver to hold the delivery", lambda: held.waiting == 1, 60)

        def recorded() -> int:
            with reading(ctx.factory) as s:
                return len([d for d in s.scalars(select(WebhookDelivery))
                            if d.status == "delivered"])  # fmt: skip

        wait_for("the other receiver's delivery recorded", lambda: recorded() == 1, 30)
        first.kill()  # while the held delivery is in flight: never recorded
        held.hang.set()  # type: ignore[union-attr]
        held.hang = None
        daemons(ctx, "a")  # the same instance, restarted: it takes its claims back

        def delivered() -> bool:
            with reading(ctx.factory) as s:
                return all(d.status == "delivered" for d in s.scalars(select(WebhookDelivery)))

        wait_for("both delivered", delivered, 60)
        with reading(ctx.factory) as s:
            rows = list(s.scalars(select(WebhookDelivery)))
        assert len(rows) == 2 and all(d.attempts == 1 for d in rows)
        for rx in (held, fine):
            assert all(r.verified for r in rx.got)
            assert len({r.webhook_id for r in rx.got}) == 1, "a retry has the same webhook-id"
            assert {r.body["data"]["activation_id"] for r in rx.got} == {act_id}
        assert len(fine.got) == 1, "the receiver that answered gets it once"
        assert len(held.got) == 2, "the one in flight at the kill gets it again, same id"
    finally:
        held.close()
        fine.close()
