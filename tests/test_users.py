"""Web logins: ``provisioner user …`` (passwords from stdin, never on the command line;
argon2 hashes only), logging in as staff and as a customer, and the principal behind a
web session, which ends with a new password or a removed user, reseller or customer."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from provisioner import registry, users
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.errors import Conflict, NotFound, ValidationError
from provisioner.models import AuditLog, WebUser
from tests.support.factories import Factory

cli_common = importlib.import_module("provisioner.cli.common")
cli_root = importlib.import_module("provisioner.cli").app


@pytest.fixture
def cli(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(cli_common, "_ctx", ctx)

    def invoke(*args: str, stdin: str | None = None, code: int = 0) -> Any:
        result = CliRunner().invoke(cli_root, list(args), input=stdin)
        assert result.exit_code == code, result.output
        return result

    return invoke


def test_user_commands_add_list_passwd_remove(cli: Any, ctx: Context) -> None:
    cli("reseller", "add", "North Net")
    cli("user", "add", "alice", "--role", "admin", "--password-stdin", stdin="a-long-pass\n")
    cli("user", "add", "nn", "--role", "reseller", "--reseller", "North Net",
        "--password-stdin", stdin="another-pass\n")  # fmt: skip
    rows = json.loads(cli("user", "list", "--json").output)
    assert [(r["username"], r["role"], r["reseller"]) for r in rows] == [
        ("alice", "admin", None), ("nn", "reseller", "North Net"),
    ]  # fmt: skip
    assert all("password" not in json.dumps(r) for r in rows)
    with transaction(ctx.factory) as s:
        stored = s.scalar(select(WebUser.password_hash).where(WebUser.username == "alice"))
        assert stored.startswith("$argon2") and "a-long-pass" not in stored
        audit = json.dumps([(a.before, a.after) for a in s.scalars(select(AuditLog))])
        assert "argon2" not in audit and "a-long-pass" not in audit
    cli("user", "passwd", "alice", "--password-stdin", stdin="a-new-password\n")
    with transaction(ctx.factory) as s:
        assert users.staff_login(s, "alice", "a-long-pass") is None
        assert users.staff_login(s, "alice", "a-new-password") is not None
    cli("user", "remove", "nn")
    assert [r["username"] for r in json.loads(cli("user", "list", "--json").output)] == ["alice"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--role", "admin"], "short\n", "password: must be at least 8 characters"),
        (["--role", "root"], "long-enough\n", "role: must be admin or reseller"),
        (["--role", "reseller"], "long-enough\n", "a reseller login needs --reseller"),
        (["--role", "admin", "--reseller", "x"], "long-enough\n", "only a reseller login"),
    ],
)
def test_user_add_refusals_are_one_line(
    cli: Any, args: list[str], stdin: str, message: str
) -> None:
    result = cli("user", "add", "bob", *args, "--password-stdin", stdin=stdin, code=1)
    assert message in result.output


def test_user_add_without_a_terminal_needs_password_stdin(cli: Any) -> None:
    result = cli("user", "add", "bob", "--role", "admin", code=1)
    assert "--password-stdin" in result.output


def test_sessions_follow_the_registry(ctx: Context, make: Factory) -> None:
    router = make.router(None)
    make.customer(None, router, username="carol", password="carol-pw")
    with transaction(ctx.factory) as s:
        registry.create_reseller(s, "t", {"name": "R"})
        users.create_user(s, "t", "admin1", role="admin", password="admin-pass")
        users.create_user(s, "t", "desk1", role="reseller", password="desk-pass-1", reseller="R")
        with pytest.raises(Conflict):
            users.create_user(s, "t", "admin1", role="admin", password="admin-pass")
    with transaction(ctx.factory) as s:
        admin = users.staff_login(s, "admin1", "admin-pass")
        desk = users.staff_login(s, "desk1", "desk-pass-1")
        customer = users.customer_login(s, "carol", "carol-pw")
        assert users.staff_login(s, "nobody", "admin-pass") is None
        assert users.customer_login(s, "carol", "carol-PW") is None
        assert users.customer_login(s, "admin1", "admin-pass") is None  # staff are not customers
        assert admin and desk and customer
        assert users.principal_of(s, admin).role == "admin"  # type: ignore[union-attr]
        p = users.principal_of(s, desk)
        assert p is not None and p.role == "reseller" and p.reseller_id is not None
        c = users.principal_of(s, customer)
        assert c is not None and c.role == "customer" and not c.read_only
        assert users.principal_of(s, {**admin, "stamp": "forged"}) is None
        assert users.principal_of(s, {"kind": "staff", "id": "1", "stamp": admin["stamp"]}) is None
    with transaction(ctx.factory) as s:  # suspended: may look, not buy
        registry.update_customer(s, "t", "carol", {"status": "suspended"})
    with transaction(ctx.factory) as s:
        c = users.principal_of(s, customer)
        assert c is not None and c.read_only
    with transaction(ctx.factory) as s:  # a new password ends the sessions of the old one
        registry.update_customer(s, "t", "carol", {"password": "carol-new"})
        users.set_password(s, "t", "admin1", "admin-pass-2")
    with transaction(ctx.factory) as s:
        assert users.principal_of(s, customer) is None
        assert users.principal_of(s, admin) is None
    with transaction(ctx.factory) as s:  # a removed reseller takes its logins with it
        registry.delete_reseller(s, "t", "R")
    with transaction(ctx.factory) as s:
        assert users.principal_of(s, desk) is None
        assert s.scalar(select(WebUser).where(WebUser.username == "desk1")) is None
        with pytest.raises(NotFound):
            users.remove_user(s, "t", "desk1")
        with pytest.raises(ValidationError):
            users.set_password(s, "t", "admin1", "short")
