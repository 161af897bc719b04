"""API tokens: lifetimes by role, expiry, revocation (CLI and API), last use, and what a
token's owner may still do once it is suspended or removed. SQLite and PostgreSQL where
the database decides (cascades, times, the conditional last-use update).
"""

from __future__ import annotations

import importlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text, update
from typer.testing import CliRunner

from provisioner import auth, cards, registry
from provisioner.api import create_app
from provisioner.auth import create_token
from provisioner.context import Context, open_context
from provisioner.db import alembic_config, transaction
from provisioner.models import ApiToken, AuditLog, RechargeCard, utcnow
from tests.conftest import make_settings
from tests.support.databases import empty_database
from tests.support.factories import Factory

API = "/api/v1"
cli_common = importlib.import_module("provisioner.cli.common")
cli_root = importlib.import_module("provisioner.cli").app


@dataclass
class Api:
    ctx: Context
    client: TestClient
    make: Factory

    def call(self, method: str, path: str, token: str | None, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.request(method, API + path, headers=headers, json=body)

    def token(self, **kw: Any) -> str:
        with transaction(self.ctx.factory) as s:
            return create_token(s, **kw)

    def row(self, token_id: int) -> ApiToken:
        with transaction(self.ctx.factory) as s:
            row = s.get(ApiToken, token_id)
            assert row is not None
            return row

    def set(self, token: str, **values: Any) -> int:
        """Change a token's row behind the API's back (to move its clock); returns its id."""
        with transaction(self.ctx.factory) as s:
            row = s.scalar(select(ApiToken).where(ApiToken.token_hash == auth._hash(token)))
            assert row is not None
            if values:
                s.execute(update(ApiToken).where(ApiToken.id == row.id).values(**values))
            return row.id


@pytest.fixture
def api(any_ctx: Context) -> Iterator[Api]:
    with TestClient(create_app(any_ctx)) as client:
        yield Api(any_ctx, client, Factory(any_ctx))


@pytest.fixture
def cli(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``provisioner ARGS`` in-process on this test's registry; returns stdout."""
    monkeypatch.setattr(cli_common, "_ctx", ctx)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli_root, list(args))
        assert result.exit_code == code, result.output
        return result.stdout

    return invoke


def _customer(make: Factory, **kw: Any) -> tuple[str, str]:
    """A customer on a public package: (username, package)."""
    router = make.router(None, mode="radius")
    package = make.package(make.master())
    return make.customer(package, router, **kw), package


# ---- lifetimes and expiry ----------------------------------------------------------------


def test_a_new_token_lives_for_its_roles_default_unless_given_days(ctx_factory: Any) -> None:
    ctx = ctx_factory("sqlite", token_days_admin=5, token_days_customer=0)
    make = Factory(ctx)
    user, _ = _customer(make)
    reseller = make.reseller()
    with transaction(ctx.factory) as s:
        admin, _ = auth.issue_token(s, role="admin")
        customer, _ = auth.issue_token(s, role="customer", customer=user)
        res, _ = auth.issue_token(s, role="reseller", reseller=reseller)
        own, _ = auth.issue_token(s, role="admin", days=2)
        never, _ = auth.issue_token(s, role="reseller", reseller=reseller, days=0)
    assert admin.expires_at is not None and admin.expires_at - admin.created_at == timedelta(5)
    assert customer.expires_at is None  # token_days_customer = 0: never
    assert res.expires_at is not None and res.expires_at - res.created_at == timedelta(365)
    assert own.expires_at is not None and own.expires_at - own.created_at == timedelta(2)
    assert never.expires_at is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "root"}, "role"),
        ({"role": "reseller"}, "reseller"),
        ({"role": "customer"}, "customer"),
        ({"role": "admin", "customer": "u1"}, "customer"),
        ({"role": "admin", "days": -1}, "days"),
        ({"role": "admin", "days": 10**9}, "days"),
    ],
)
def test_creating_a_token_refuses_what_it_cannot_make(ctx: Context, body: Any, field: str) -> None:
    with TestClient(create_app(ctx)) as client:
        admin = Api(ctx, client, Factory(ctx)).token(role="admin")
        r = client.post(f"{API}/tokens", headers={"Authorization": f"Bearer {admin}"}, json=body)
    assert r.status_code == 422 and r.json()["field"] == field, r.json()


def test_an_expired_token_answers_401_saying_so(api: Api) -> None:
    token = api.token(role="admin", days=1)
    assert api.call("GET", "/tokens", token).status_code == 200
    api.set(token, expires_at=utcnow() - timedelta(seconds=1))  # a day later
    r = api.call("GET", "/tokens", token)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "the bearer token has expired" in r.json()["reason"]
    listed = api.call("GET", "/tokens", api.token(role="admin")).json()["items"]
    assert [t["status"] for t in listed] == ["expired", "active"]


# ---- revocation ----------------------------------------------------------------------------


def test_an_admin_makes_lists_and_revokes_tokens_over_the_api(api: Api) -> None:
    admin = api.token(role="admin", name="ops")
    user, _ = _customer(api.make)
    r = api.call("POST", "/tokens", admin, {"role": "customer", "customer": user, "days": 3})
    assert r.status_code == 201, r.json()
    made = r.json()
    assert made["token"].startswith("prov_") and made["owner"] == user
    assert made["status"] == "active" and made["expires_at"] is not None
    assert api.call("GET", "/customers/me", made["token"]).status_code == 200

    assert api.call("DELETE", f"/tokens/{made['id']}", admin).status_code == 204
    r = api.call("GET", "/customers/me", made["token"])
    assert r.status_code == 401 and "the bearer token was revoked" in r.json()["reason"]
    first = api.row(made["id"]).revoked_at
    assert api.call("DELETE", f"/tokens/{made['id']}", admin).status_code == 204  # no-op
    assert api.row(made["id"]).revoked_at == first
    r = api.call("DELETE", "/tokens/9999", admin)
    assert r.status_code == 404 and r.json()["reason"] == "no token 9999"

    listed = {t["id"]: t for t in api.call("GET", "/tokens", admin).json()["items"]}
    assert listed[made["id"]]["status"] == "revoked" and "token" not in listed[made["id"]]
    assert not any("hash" in key for t in listed.values() for key in t)
    with transaction(api.ctx.factory) as s:
        logged = s.scalars(select(AuditLog).where(AuditLog.entity == "api_tokens")).all()
        trail = [(a.actor, a.action, a.entity_id) for a in logged]
        after = [a.after for a in logged]
    assert ("admin:ops", "create", made["id"]) in trail
    assert trail.count(("admin:ops", "update", made["id"])) == 1  # the second revoke: nothing
    assert all(a and "token_hash" not in a for a in after)


def test_revoking_from_the_cli_stops_the_token(ctx: Context, cli: Any) -> None:
    token = cli("token", "--role", "admin", "--name", "old-form").strip()  # README's form
    assert token.startswith("prov_")
    with TestClient(create_app(ctx)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get(f"{API}/tokens", headers=headers).status_code == 200
        listed = json.loads(cli("token", "list", "--json"))["items"]
        assert [(t["id"], t["name"], t["status"]) for t in listed] == [(1, "old-form", "active")]
        assert "hash" not in json.dumps(listed) and token not in json.dumps(listed)
        assert "token 1 revoked" in cli("token", "revoke", "1")
        r = client.get(f"{API}/tokens", headers=headers)
        assert r.status_code == 401 and "revoked" in r.json()["reason"]
    cli("token", "revoke", "7", code=1)
    table = cli("token", "list")
    assert "old-form" in table and "revoked" in table and "last used at" in table


def test_token_create_in_the_cli_takes_days_and_an_owner(ctx: Context, cli: Any) -> None:
    reseller = Factory(ctx).reseller()
    token = cli("token", "create", "--role", "reseller", "--reseller", reseller, "--days", "3")
    assert token.strip().startswith("prov_")
    cli("token", "create", "--role", "reseller", code=1)  # no --reseller
    cli("token", "--role", "admin", "list", code=1)  # options go after the command
    (row,) = json.loads(cli("token", "list", "--json"))["items"]
    assert (row["role"], row["owner"], row["status"]) == ("reseller", reseller, "active")
    with transaction(ctx.factory) as s:
        t = s.get(ApiToken, row["id"])
        assert t is not None and t.expires_at is not None
        assert t.expires_at - t.created_at == timedelta(days=3)


# ---- last use ------------------------------------------------------------------------------


def test_last_use_is_recorded_at_most_once_a_minute(api: Api) -> None:
    admin = api.token(role="admin")
    user, _ = _customer(api.make)
    token = api.token(role="customer", customer=user)
    token_id = api.set(token)
    assert api.row(token_id).last_used_at is None
    assert api.call("GET", "/customers/me", token).status_code == 200
    first = api.row(token_id).last_used_at
    assert first is not None and abs(utcnow() - first) < timedelta(minutes=1)
    assert api.call("GET", "/customers/me", token).status_code == 200
    assert api.row(token_id).last_used_at == first  # within the minute: no write

    api.set(token, last_used_at=first - timedelta(minutes=2))
    assert api.call("GET", "/customers/me", token).status_code == 200
    again = api.row(token_id).last_used_at
    assert again is not None and again > first - timedelta(minutes=1)

    listed = {t["id"]: t for t in api.call("GET", "/tokens", admin).json()["items"]}
    assert listed[token_id]["last_used_at"] == again.isoformat(timespec="seconds")


def test_a_busy_sqlite_writer_never_holds_up_a_token_check(ctx: Context) -> None:
    """Recording a use waits at most a moment for the write lock, then is left to the next
    request: the request is answered while another transaction writes."""
    with TestClient(create_app(ctx)) as client:
        api = Api(ctx, client, Factory(ctx))
        token = api.token(role="admin")
        token_id = api.set(token)
        writing, answered = threading.Event(), threading.Event()

        def writer() -> None:
            with transaction(ctx.factory) as s:
                registry.create_reseller(s, "test", {"name": "holding-the-lock"})
                writing.set()
                answered.wait(timeout=20)

        t = threading.Thread(target=writer)
        t.start()
        try:
            assert writing.wait(timeout=20)
            started = time.monotonic()
            r = api.call("GET", "/tokens", token)
            took = time.monotonic() - started
            still_locked = t.is_alive()
        finally:
            answered.set()
            t.join(timeout=20)
        assert r.status_code == 200 and still_locked and took < 5
        assert api.row(token_id).last_used_at is None  # skipped, not waited for
        assert api.call("GET", "/tokens", token).status_code == 200
        assert api.row(token_id).last_used_at is not None


# ---- the owner's state ---------------------------------------------------------------------


def test_a_suspended_customer_may_read_its_account_but_not_buy(api: Api) -> None:
    user, package = _customer(api.make, status="suspended")
    token = api.token(role="customer", customer=user)
    with transaction(api.ctx.factory) as s:
        ((serial, pin),) = cards.generate(s, 1, "100", 30, "b1")

    r = api.call("GET", "/customers/me", token)
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    assert api.call("GET", "/balance", token).status_code == 200
    r = api.call(
        "POST",
        "/activations",
        token,
        {"customer": user, "package": package, "idempotency_key": "k1"},
    )
    assert r.status_code == 403 and "suspended" in r.json()["reason"]
    r = api.call("POST", "/cards/redeem", token, {"serial": serial, "pin": pin})
    assert r.status_code == 403 and "suspended" in r.json()["reason"]
    with transaction(api.ctx.factory) as s:
        assert s.scalar(select(RechargeCard.redeemed_at)) is None

    with transaction(api.ctx.factory) as s:  # the operator lifts the suspension
        registry.update_customer(s, "test", user, {"status": "active"})
    r = api.call("POST", "/cards/redeem", token, {"serial": serial, "pin": pin})
    assert r.status_code == 200 and r.json()["balance"] == "100.00"


def test_a_removed_customers_or_resellers_token_answers_401(api: Api) -> None:
    user, _ = _customer(api.make)
    reseller = api.make.reseller()
    customer_token = api.token(role="customer", customer=user)
    reseller_token = api.token(role="reseller", reseller=reseller)
    assert api.call("GET", "/customers/me", customer_token).status_code == 200
    assert api.call("GET", "/resellers/me", reseller_token).status_code == 200
    with transaction(api.ctx.factory) as s:
        registry.delete_customer(s, "test", user)
        registry.delete_reseller(s, "test", reseller)
    for token, path in ((customer_token, "/customers/me"), (reseller_token, "/resellers/me")):
        r = api.call("GET", path, token)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.json()
    with transaction(api.ctx.factory) as s:  # the foreign key took the tokens with them
        assert s.scalar(select(ApiToken.id)) is None


def test_a_token_whose_owner_row_is_gone_is_refused_even_if_the_row_stays(ctx: Context) -> None:
    """Without the cascade (foreign keys off), the owner check still refuses the token."""
    user, _ = _customer(Factory(ctx))
    with transaction(ctx.factory) as s:
        token = create_token(s, role="customer", customer=user)
    raw = sqlite3.connect(ctx.settings.database_url.removeprefix("sqlite:///"))
    with raw:  # sqlite3 leaves foreign keys off unless told
        raw.execute("DELETE FROM customers")
    raw.close()
    with transaction(ctx.factory) as s:
        assert s.scalar(select(ApiToken.id)) is not None
        with pytest.raises(auth.Unauthorized, match="this token's customer no longer exists"):
            auth.authenticate(s, token)


def test_only_an_admin_may_list_make_or_revoke_tokens(api: Api) -> None:
    user, _ = _customer(api.make)
    admin = api.token(role="admin")
    for token in (
        api.token(role="reseller", reseller=api.make.reseller()),
        api.token(role="customer", customer=user),
    ):
        for method, path, body in (
            ("GET", "/tokens", None),
            ("POST", "/tokens", {"role": "admin"}),
            ("DELETE", "/tokens/1", None),
        ):
            r = api.call(method, path, token, body)
            assert r.status_code == 403, (method, path, r.json())
    listed = api.call("GET", "/tokens", admin).json()["items"]
    assert len(listed) == 3 and all(t["status"] == "active" for t in listed)


# ---- the upgrade ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrading_from_0002_keeps_existing_tokens_working(backend: str, tmp_path: Path) -> None:
    token = "prov_made-before-0003"
    with empty_database(backend, tmp_path, "tok") as url:
        command.upgrade(alembic_config(url), "0002")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO api_tokens (token_hash, role, name, created_at) "
                    "VALUES (:h, 'admin', 'old', CURRENT_TIMESTAMP)"
                ),
                {"h": auth._hash(token)},
            )
        engine.dispose()
        ctx = open_context(make_settings(tmp_path, url))  # migrates to head
        try:
            with transaction(ctx.factory) as s:
                row = s.scalar(select(ApiToken))
                assert row is not None and row.expires_at is None and row.revoked_at is None
            with TestClient(create_app(ctx)) as client:
                r = client.get(f"{API}/tokens", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.json()
            ((listed),) = r.json()["items"]
            said = (listed["name"], listed["expires_at"], listed["status"])
            assert said == ("old", None, "active")
            assert listed["last_used_at"] is not None
        finally:
            ctx.close()


# ---- the token cache -----------------------------------------------------------------------


@pytest.fixture
def cached(ctx_factory: Any, backend: str) -> Iterator[Api]:
    """The API with verified tokens cached for 30 s (a clock no test waits out)."""
    ctx = ctx_factory(backend, token_cache_seconds=30.0)
    with TestClient(create_app(ctx)) as client:
        yield Api(ctx, client, Factory(ctx))


def _token_queries(api: Api, call: Any) -> int:
    """Queries of ``api_tokens`` made while ``call()`` runs."""
    return len(_token_statements(api.ctx, call))


def test_a_verified_token_is_not_queried_again_while_cached(cached: Api) -> None:
    token = cached.token(role="admin")
    assert _token_queries(cached, lambda: cached.call("GET", "/tokens", token)) >= 1
    # The listing itself reads api_tokens; the check before it must not.
    assert _token_queries(cached, lambda: cached.call("GET", "/resellers", token)) == 0
    other = cached.token(role="admin")
    assert _token_queries(cached, lambda: cached.call("GET", "/resellers", other)) >= 1
    assert cached.call("GET", "/resellers", "not-a-token").status_code == 401


def test_what_this_process_changes_applies_at_once_despite_the_cache(cached: Api) -> None:
    """Revoked through the API, a customer suspended or removed: the next request sees
    it, cached or not."""
    admin = cached.token(role="admin")
    victim = cached.token(role="admin")
    assert cached.call("GET", "/resellers", victim).status_code == 200  # now cached
    victim_id = cached.set(victim)
    assert cached.call("DELETE", f"/tokens/{victim_id}", admin).status_code == 204
    assert cached.call("GET", "/resellers", victim).status_code == 401

    user, package = _customer(cached.make)
    token = cached.token(role="customer", customer=user)
    assert cached.call("GET", "/customers/me", token).status_code == 200  # cached
    with transaction(cached.ctx.factory) as s:
        registry.update_customer(s, "test", user, {"status": "suspended"})
    r = cached.call(
        "POST", "/activations", token,
        {"customer": user, "package": package, "idempotency_key": "k1"},
    )  # fmt: skip
    assert r.status_code == 403 and "suspended" in r.json()["reason"]
    with transaction(cached.ctx.factory) as s:
        registry.delete_customer(s, "test", user)
    assert cached.call("GET", "/customers/me", token).status_code == 401


def test_a_change_made_elsewhere_is_seen_when_the_entry_is_renewed(ctx_factory: Any) -> None:
    """Another process (here: a row changed behind the app's back) is seen once the first
    request past the middle of the entry's ``token_cache_seconds`` has had the token
    checked again (beside it), before the entry's end; not before the middle."""
    ctx = ctx_factory("sqlite", token_cache_seconds=6.0)
    with TestClient(create_app(ctx)) as client:
        api = Api(ctx, client, Factory(ctx))
        token = api.token(role="admin")
        assert api.call("GET", "/resellers", token).status_code == 200
        cached_at = time.monotonic()
        api.set(token, revoked_at=utcnow())
        assert api.call("GET", "/resellers", token).status_code == 200  # still cached
        time.sleep(3.1)
        # Past the middle: this request still uses the entry and has it checked again.
        assert api.call("GET", "/resellers", token).status_code == 200
        while (status := api.call("GET", "/resellers", token).status_code) == 200:
            assert time.monotonic() - cached_at < 5.5, "the renewal did not see the revocation"
            time.sleep(0.05)
        assert status == 401


def test_one_caller_renews_an_entry_past_its_middle_the_others_use_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Renewed ahead, a busy token is never missing from the cache for all its requests
    at once (each would check it on the slow path: the bursts ``bench.activations`` saw
    every ``token_cache_seconds``)."""
    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    cache = auth.TokenCache(2.0)
    who, now = auth.Principal("admin"), utcnow()
    cache.put("t", who, None, auth.generation())
    assert cache.lookup("t", now) == (who, False)
    clock[0] += 0.99
    assert cache.lookup("t", now) == (who, False)
    clock[0] += 0.02  # past the middle: the first caller renews, the next ones do not
    assert [cache.lookup("t", now) for _ in range(3)] == [(who, True), (who, False), (who, False)]
    clock[0] += 1.0  # never renewed: gone at its end, as before
    assert cache.lookup("t", now) == (None, False)
    cache.put("t", who, None, auth.generation())  # renewed: a new life
    clock[0] += 1.5
    assert cache.lookup("t", now) == (who, True)
    cache.drop("t")  # refused when checked again
    assert cache.lookup("t", now) == (None, False)
    cache.put("t", who, now, auth.generation())  # never past the token's own expiry
    assert cache.lookup("t", now) == (None, False)


def test_past_the_middle_one_request_checks_the_token_again(ctx_factory: Any) -> None:
    ctx = ctx_factory("sqlite", token_cache_seconds=1.0)
    with TestClient(create_app(ctx)) as client:
        api = Api(ctx, client, Factory(ctx))
        token = api.token(role="admin")
        assert _token_queries(api, lambda: api.call("GET", "/resellers", token)) >= 1
        assert _token_queries(api, lambda: api.call("GET", "/resellers", token)) == 0
        time.sleep(0.55)

        def five() -> None:
            for _ in range(5):
                assert api.call("GET", "/resellers", token).status_code == 200
            time.sleep(0.3)  # the check made beside the first of them

        assert _token_queries(api, five) == 1


def test_a_burst_on_an_uncached_token_checks_it_once(ctx_factory: Any) -> None:
    """Requests that find the same token missing from the cache at once (a client's burst
    after an idle spell) wait for one check of it; each is answered."""
    import asyncio

    ctx = ctx_factory("sqlite", token_cache_seconds=60.0)
    app = create_app(ctx)
    with transaction(ctx.factory) as s:
        token = create_token(s, role="admin")

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            answers = await asyncio.gather(*(
                c.get("/api/v1/resellers", headers={"Authorization": f"Bearer {token}"})
                for _ in range(8)
            ))  # fmt: skip
        return [r.status_code for r in answers]

    seen: list[int] = []
    assert _token_selects(ctx, lambda: seen.extend(asyncio.run(burst()))) == 1
    assert seen == [200] * 8


def _token_selects(ctx: Context, call: Any) -> int:
    """SELECTs of ``api_tokens`` made while ``call()`` runs (a use recorded is an UPDATE)."""
    return sum(1 for q in _token_statements(ctx, call) if q.lstrip().upper().startswith("SELECT"))


def _token_statements(ctx: Context, call: Any) -> list[str]:
    """Statements naming ``api_tokens`` made while ``call()`` runs."""
    seen: list[str] = []

    def count(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if "api_tokens" in statement:
            seen.append(statement)

    from sqlalchemy import event

    event.listen(ctx.engine, "before_cursor_execute", count)
    try:
        call()
    finally:
        event.remove(ctx.engine, "before_cursor_execute", count)
    return seen
