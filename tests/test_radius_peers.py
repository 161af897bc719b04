"""The RADIUS peers for real: Debian's FreeRADIUS reading the stock SQL tables (SQLite and
PostgreSQL), probed with nas_adapters.radius_client; and CoA/Disconnect against a pyrad
server on loopback.

Skips without FreeRADIUS / PostgreSQL, fails instead under PROVISIONER_REQUIRE_REAL=1.
The tables are created here from FreeRADIUS's own stock schema.sql, so these tests check
the fixture and the client, not the application's schema.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nas_adapters import radius_client
from nas_adapters.errors import TemporaryNasError
from tests.support.coa_server import CoaServer
from tests.support.freeradius import (
    STOCK_RADDB,
    FreeRadius,
    freeradius_available,
    postgresql_driver_available,
)
from tests.support.require import require

SECRET = "s3cret"
SCHEMA_DIR = STOCK_RADDB / "mods-config" / "sql" / "main"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": ""}
GROUP_REPLY = {
    "Mikrotik-Rate-Limit": "2M/10M",
    "Framed-Pool": "pool10",
    "Mikrotik-Group": "p10",
}


# ----------------------------------------------------------------------------- database


class Db:
    """Minimal access to the test database; SQL is written with ``?`` placeholders."""

    def __init__(self, conn: Any, paramstyle: str) -> None:
        self.conn = conn
        self.paramstyle = paramstyle

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.paramstyle == "format":
            sql = sql.replace("?", "%s")
        cur = self.conn.execute(sql, params)
        rows = cur.fetchall() if cur.description else []
        self.conn.commit()
        return rows

    def add_user(self, username: str, password: str, group: str | None = None) -> None:
        self.execute(
            "INSERT INTO radcheck (username, attribute, op, value) VALUES (?, ?, ':=', ?)",
            (username, "Cleartext-Password", password),
        )
        if group:
            self.execute(
                "INSERT INTO radusergroup (username, groupname, priority) VALUES (?, ?, 1)",
                (username, group),
            )

    def add_check(self, username: str, attribute: str, value: str) -> None:
        self.execute(
            "INSERT INTO radcheck (username, attribute, op, value) VALUES (?, ?, ':=', ?)",
            (username, attribute, value),
        )


def _seed(db: Db) -> None:
    """The nas row must exist before FreeRADIUS starts (read_clients is start-up only)."""
    db.execute(
        "INSERT INTO nas (nasname, shortname, type, secret) VALUES (?, ?, ?, ?)",
        ("127.0.0.1", "test", "other", SECRET),
    )
    db.add_user("alice", "alice-pw", group="p10")
    for attribute, value in GROUP_REPLY.items():
        db.execute(
            "INSERT INTO radgroupreply (groupname, attribute, op, value) VALUES (?, ?, ':=', ?)",
            ("p10", attribute, value),
        )


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Db, dict]]:
    path = tmp_path_factory.mktemp("radius-sqlite") / "radius.db"
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")  # as the application runs it
    conn.executescript((SCHEMA_DIR / "sqlite" / "schema.sql").read_text())
    db = Db(conn, "qmark")
    _seed(db)
    yield db, {"dialect": "sqlite", "sqlite_path": str(path)}
    conn.close()


@pytest.fixture(scope="module")
def postgresql_db() -> Iterator[tuple[Db, dict]]:
    require(postgresql_driver_available(), "freeradius-postgresql (rlm_sql_postgresql) missing")
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a project dependency
        require(False, "psycopg is not installed")
        raise
    try:
        admin = psycopg.connect(**PG, dbname="postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        require(False, f"PostgreSQL on {PG['host']}:{PG['port']} unreachable: {exc}")
        raise
    name = f"fr_fixture_test_{os.getpid()}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{name}"')
    conn = psycopg.connect(**PG, dbname=name, autocommit=True)
    try:
        conn.execute((SCHEMA_DIR / "postgresql" / "schema.sql").read_text())
        db = Db(conn, "format")
        _seed(db)
        yield db, {"dialect": "postgresql", "pg": {**PG, "dbname": name}}
    finally:
        conn.close()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def radius(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FreeRadius, Db]]:
    """A running FreeRADIUS on the seeded database, one per backend for this module."""
    require(freeradius_available(), "FreeRADIUS is not installed (scripts/install-freeradius.sh)")
    db, kwargs = request.getfixturevalue(f"{request.param}_db")
    server = FreeRadius(**kwargs, workdir=tmp_path_factory.mktemp(f"fr-{request.param}"))
    with server:
        yield server, db


def _auth(server: FreeRadius, user: str, password: str, **kw: Any) -> radius_client.RadiusReply:
    # RouterOS 7.15+ drops replies without a Message-Authenticator; so do we here.
    return radius_client.authenticate(
        server.host,
        server.auth_port,
        SECRET,
        user,
        password,
        require_message_authenticator=True,
        **kw,
    )


# ----------------------------------------------------------------------------- FreeRADIUS


@pytest.mark.freeradius
def test_accept_carries_group_reply_attributes(radius: tuple[FreeRadius, Db]) -> None:
    server, _ = radius
    reply = _auth(server, "alice", "alice-pw")
    assert reply.accepted, server.log_tail()
    assert reply.code_name == "Access-Accept"
    for attribute, value in GROUP_REPLY.items():
        assert reply.attributes.get(attribute) == [value], reply.attributes
    assert "Message-Authenticator" in reply.attributes


@pytest.mark.freeradius
def test_wrong_password_is_rejected_at_once(radius: tuple[FreeRadius, Db]) -> None:
    server, _ = radius
    started = time.monotonic()
    reply = _auth(server, "alice", "not-the-password")
    assert not reply.accepted
    assert reply.code_name == "Access-Reject"
    # reject_delay = 0: a router with a 300 ms timeout must see a reject, not a timeout.
    assert time.monotonic() - started < 0.5


@pytest.mark.freeradius
def test_unknown_user_is_rejected(radius: tuple[FreeRadius, Db]) -> None:
    server, _ = radius
    assert not _auth(server, "nobody", "x").accepted


@pytest.mark.freeradius
def test_expired_user_is_rejected(radius: tuple[FreeRadius, Db]) -> None:
    server, db = radius
    db.add_user("expired", "pw", group="p10")
    db.add_check("expired", "Expiration", "Jan 01 2020 00:00:00")
    reply = _auth(server, "expired", "pw")
    assert not reply.accepted, server.log_tail()


@pytest.mark.freeradius
def test_future_expiration_accepts_and_caps_session_timeout(
    radius: tuple[FreeRadius, Db],
) -> None:
    server, db = radius
    db.add_user("later", "pw", group="p10")
    in_an_hour = time.strftime("%b %d %Y %H:%M:%S", time.localtime(time.time() + 3600))
    db.add_check("later", "Expiration", in_an_hour)
    reply = _auth(server, "later", "pw")
    assert reply.accepted, server.log_tail()
    (timeout,) = reply.attributes["Session-Timeout"]
    # Whole seconds on both sides (the string here, the request's time in FreeRADIUS):
    # one second over the hour is rounding, seen once in a run of the whole suite.
    assert isinstance(timeout, int) and 3500 <= timeout <= 3601


@pytest.mark.freeradius
def test_rows_changed_after_start_apply_at_once(radius: tuple[FreeRadius, Db]) -> None:
    server, db = radius
    db.add_user("newcomer", "pw")
    assert _auth(server, "newcomer", "pw").accepted
    db.add_check("newcomer", "Auth-Type", "Reject")
    assert not _auth(server, "newcomer", "pw").accepted


@pytest.mark.freeradius
def test_simultaneous_use_counts_open_sessions(radius: tuple[FreeRadius, Db]) -> None:
    """Accounting through FreeRADIUS fills radacct; Simultaneous-Use := 1 then rejects
    a second login until the session stops (checks session{sql}, checkrad and the SQLite
    simul_verify_query fix)."""
    import pyrad.client
    import pyrad.packet

    server, db = radius
    db.add_user("single", "pw", group="solo")
    db.execute(
        "INSERT INTO radgroupcheck (groupname, attribute, op, value) VALUES (?, ?, ':=', ?)",
        ("solo", "Simultaneous-Use", "1"),
    )
    assert _auth(server, "single", "pw").accepted, server.log_tail()

    client = pyrad.client.Client(
        server=server.host,
        acctport=server.acct_port,
        secret=SECRET.encode(),
        dict=radius_client.load_dictionary(),
        retries=1,
        timeout=2,
    )

    def account(status: str) -> None:
        pkt = client.CreateAcctPacket(code=pyrad.packet.AccountingRequest)
        for name, value in {
            "User-Name": "single",
            "Acct-Status-Type": status,
            "Acct-Session-Id": "81a00001",
            "NAS-IP-Address": "127.0.0.1",
            "NAS-Port": 1,
            "Framed-IP-Address": "10.10.0.7",
        }.items():
            pkt.AddAttribute(name, value)
        reply = client.SendPacket(pkt)
        assert reply.code == pyrad.packet.AccountingResponse, server.log_tail()

    account("Start")
    rows = db.execute(
        "SELECT username FROM radacct WHERE acctstoptime IS NULL AND username = ?", ("single",)
    )
    assert rows == [("single",)]
    assert not _auth(server, "single", "pw").accepted, server.log_tail()
    account("Stop")
    assert _auth(server, "single", "pw").accepted, server.log_tail()


@pytest.mark.freeradius
def test_wrong_secret_is_no_answer(radius: tuple[FreeRadius, Db]) -> None:
    server, _ = radius
    with pytest.raises(TemporaryNasError):
        radius_client.authenticate(
            server.host, server.auth_port, "wrong", "alice", "alice-pw", timeout=0.3
        )


# ----------------------------------------------------------------------------- CoA


@pytest.fixture
def coa() -> Iterator[CoaServer]:
    with CoaServer(SECRET) as server:
        yield server


def test_coa_is_acked_and_recorded(coa: CoaServer) -> None:
    attributes = {
        "User-Name": "alice",
        "Acct-Session-Id": "81a00001",
        "Framed-IP-Address": "10.10.0.7",
        "Mikrotik-Rate-Limit": "5M/20M",
    }
    reply = radius_client.send_coa(coa.host, coa.port, SECRET, attributes)
    assert reply.accepted and reply.code_name == "CoA-ACK"
    assert coa.received == [("CoA-Request", {k: [v] for k, v in attributes.items()})]


def test_coa_nak_is_a_reply_with_error_cause(coa: CoaServer) -> None:
    coa.nak = True
    reply = radius_client.send_coa(
        coa.host, coa.port, SECRET, {"User-Name": "ghost", "Mikrotik-Rate-Limit": "1M/1M"}
    )
    assert not reply.accepted
    assert reply.code_name == "CoA-NAK"
    assert reply.attributes["Error-Cause"] == [503]
    assert reply.error_cause == 503


def test_silent_nas_raises_temporary_error(coa: CoaServer) -> None:
    coa.silent = True
    with pytest.raises(TemporaryNasError):
        radius_client.send_coa(
            coa.host, coa.port, SECRET, {"User-Name": "alice"}, timeout=0.2, retries=2
        )
    assert len(coa.received) == 2  # both sends arrived; neither was answered


def test_disconnect_is_acked_and_recorded(coa: CoaServer) -> None:
    reply = radius_client.send_disconnect(
        coa.host, coa.port, SECRET, {"User-Name": "alice", "Acct-Session-Id": "81a00001"}
    )
    assert reply.accepted and reply.code_name == "Disconnect-ACK"
    assert coa.received == [
        ("Disconnect-Request", {"User-Name": ["alice"], "Acct-Session-Id": ["81a00001"]})
    ]


def test_disconnect_nak(coa: CoaServer) -> None:
    coa.nak = True
    reply = radius_client.send_disconnect(coa.host, coa.port, SECRET, {"User-Name": "alice"})
    assert (reply.accepted, reply.code_name, reply.error_cause) == (False, "Disconnect-NAK", 503)


def test_wrong_secret_is_dropped_by_the_nas(coa: CoaServer) -> None:
    with pytest.raises(TemporaryNasError):
        radius_client.send_coa(
            coa.host, coa.port, "not-the-secret", {"User-Name": "alice"}, timeout=0.2, retries=1
        )
    assert coa.received == []


def test_bad_input_is_refused_before_sending(coa: CoaServer) -> None:
    with pytest.raises(ValueError, match="unknown RADIUS attribute"):
        radius_client.send_coa(coa.host, coa.port, SECRET, {"No-Such-Attribute": "x"})
    with pytest.raises(ValueError, match="Framed-IP-Address"):
        radius_client.send_coa(coa.host, coa.port, SECRET, {"Framed-IP-Address": "not-an-ip"})
    assert coa.received == []


def test_stopped_server_releases_its_port() -> None:
    server = CoaServer(SECRET).start()
    port = server.port
    server.stop()
    with CoaServer(SECRET, port=port) as again:  # would fail with EADDRINUSE if still held
        assert radius_client.send_coa(again.host, port, SECRET, {"User-Name": "a"}).accepted


def test_shipped_dictionary_has_the_mikrotik_and_rfc_attributes() -> None:
    d = radius_client.load_dictionary()
    assert d is radius_client.load_dictionary()  # cached
    expected = {
        "Mikrotik-Recv-Limit": (1, "integer"),
        "Mikrotik-Xmit-Limit": (2, "integer"),
        "Mikrotik-Group": (3, "string"),
        "Mikrotik-Rate-Limit": (8, "string"),
        "Mikrotik-Recv-Limit-Gigawords": (14, "integer"),
        "Mikrotik-Xmit-Limit-Gigawords": (15, "integer"),
        "Mikrotik-Total-Limit": (17, "integer"),
        "Mikrotik-Total-Limit-Gigawords": (18, "integer"),
        "Mikrotik-Address-List": (19, "string"),
    }
    for name, (code, datatype) in expected.items():
        attr = d.attributes[name]
        assert (attr.vendor, attr.code, attr.type) == ("Mikrotik", code, datatype)
    for name, code in {
        "Framed-Pool": 88,
        "Error-Cause": 101,
        "Message-Authenticator": 80,
        "Acct-Interim-Interval": 85,
        "Event-Timestamp": 55,
        "Framed-IP-Address": 8,
    }.items():
        assert d.attributes[name].code == code


def test_shipped_dictionary_matches_freeradius() -> None:
    """Every attribute we ship has FreeRADIUS's number and type (when it is installed)."""
    require(freeradius_available(), "FreeRADIUS dictionaries not installed")
    from pyrad.dictionary import Dictionary

    files = [
        "rfc2865",
        "rfc2866",
        "rfc2869",
        "rfc4372",
        "rfc3162",
        "rfc4818",
        "rfc6911",
        "rfc3576",
        "rfc5176",
        "mikrotik",
    ]
    stock = Dictionary(*[str(Path("/usr/share/freeradius") / f"dictionary.{f}") for f in files])
    ours = radius_client.load_dictionary()
    for name in ours.attributes:
        mine, theirs = ours.attributes[name], stock.attributes[name]
        assert (mine.code, mine.type, mine.vendor) == (theirs.code, theirs.type, theirs.vendor)
