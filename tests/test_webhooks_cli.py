"""``provisioner webhook …``, ``events tail`` and ``reminder …`` through typer's runner
against a real receiver."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from provisioner import events
from provisioner.context import Context
from provisioner.db import transaction
from tests.support.receiver import Receiver

cli_app = importlib.import_module("provisioner.cli.common")
cli_root = importlib.import_module("provisioner.cli").app


@pytest.fixture
def cli(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(cli_app, "_ctx", ctx)

    def invoke(*args: str, code: int = 0) -> Any:
        result = CliRunner().invoke(cli_root, list(args))
        assert result.exit_code == code, result.output
        return result

    return invoke


def test_webhook_commands_end_to_end(ctx: Context, cli: Any) -> None:
    rx = Receiver(fail_first=1)
    try:
        made = json.loads(cli("webhook", "add", rx.url, "-e", "webhook.test", "--json").output)
        rx.secret = made["secret"]
        assert made["secret"].startswith("whsec_")
        assert "whsec_" not in cli("webhook", "list").output, "the secret is shown once"
        cli("webhook", "test", str(made["id"]))
        cli("webhook", "send")
        rows = json.loads(cli("webhook", "deliveries", str(made["id"]), "--json").output)
        assert rows[0]["status"] == "pending" and rows[0]["last_status"] == 500
        cli("webhook", "redeliver", str(made["id"]), str(rows[0]["id"]))
        cli("webhook", "send")
        shown = json.loads(
            cli("webhook", "delivery", str(made["id"]), str(rows[0]["id"]), "--json").output
        )
        assert shown["status"] == "delivered"
        assert [a["status_code"] for a in shown["log"]] == [500, 204]
        assert all(r.verified for r in rx.got)
        rotated = json.loads(cli("webhook", "rotate", str(made["id"]), "--json").output)
        assert rotated["secret"] != made["secret"]
        cli("webhook", "edit", str(made["id"]), "--disable")
        assert json.loads(cli("webhook", "list", "--json").output)[0]["enabled"] is False
        bad = cli("webhook", "add", "ftp://x", "-e", "*", code=1)
        assert "url" in bad.output
        cli("webhook", "remove", str(made["id"]))
        assert json.loads(cli("webhook", "list", "--json").output) == []
    finally:
        rx.close()


def test_events_tail_prints_events_as_they_happen(ctx: Context, cli: Any) -> None:
    with transaction(ctx.factory) as s:
        events.emit(s, "customer.expired", {"customer": "old"})
        events.emit(s, "customer.expired", {"customer": "last"})
    got = cli("events", "tail", "--last", "1", "--count", "1", "--json", "--interval", "0.05")
    lines = [json.loads(x) for x in got.output.splitlines()]
    assert [x["data"]["customer"] for x in lines] == ["last"]
    listed = json.loads(cli("events", "list", "--json").output)
    assert [x["data"]["customer"] for x in listed] == ["old", "last"]
    assert "activation.applied" in cli("events", "types").output


def test_reminder_contact(ctx: Context, cli: Any) -> None:
    from tests.support.factories import Factory

    make = Factory(ctx)
    pkg = make.package(make.master(customer_type="other", name="f"), name="F")
    make.customer(pkg, None, customer_type="other", username="onu")
    shown = json.loads(cli("reminder", "contact", "onu", "--email", "o@example.net",
                           "--language", "bn", "--json").output)  # fmt: skip
    assert (shown["email"], shown["language"], shown["opt_out"]) == ("o@example.net", "bn", False)
    shown = json.loads(cli("reminder", "contact", "onu", "--opt-out", "--json").output)
    assert shown["opt_out"] is True and shown["email"] == "o@example.net"
    assert json.loads(cli("reminder", "list", "--json").output) == []
