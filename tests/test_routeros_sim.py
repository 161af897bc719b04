"""The RouterOS simulator, checked the way the project uses it: librouteros over real TCP.

Wire framing and query evaluation are also tested as pure tables. No mocks.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import librouteros
import pytest
from librouteros import protocol as ros_protocol
from librouteros.exceptions import ConnectionClosed, FatalError, TrapError
from librouteros.login import token
from librouteros.query import And, Key, Or

from nas_adapters.routeros_sim import SimulatedFleet, SimulatedRouter, Trap
from nas_adapters.routeros_sim.menus import compile_query, format_time, parse_time_ms
from nas_adapters.routeros_sim.wire import (
    SentenceDecoder,
    WireError,
    decode_length,
    encode_length,
    encode_sentence,
    read_sentence,
)

PASSWORD = "s3cret"

# ---------------------------------------------------------------------------------------
# wire.py
# ---------------------------------------------------------------------------------------

LENGTHS = [
    (0x00, "00"),
    (0x7F, "7f"),
    (0x80, "8080"),
    (0x3FFF, "bfff"),
    (0x4000, "c04000"),
    (0x1FFFFF, "dfffff"),
    (0x200000, "e0200000"),
    (0xFFFFFFF, "efffffff"),
]


@pytest.mark.parametrize(("length", "hex_"), LENGTHS)
def test_length_forms_match_reference_and_librouteros(length: int, hex_: str) -> None:
    encoded = encode_length(length)
    assert encoded.hex() == hex_
    assert encoded == ros_protocol.encode_length(length)
    assert decode_length(encoded) == (length, len(encoded))


def test_five_byte_form_decodes_but_is_never_encoded() -> None:
    assert decode_length(bytes.fromhex("f010000000")) == (0x10000000, 5)
    with pytest.raises(WireError):
        encode_length(0x10000000)


def test_reserved_control_byte_and_short_input() -> None:
    with pytest.raises(WireError):
        decode_length(b"\xf8\x00\x00\x00\x00")
    assert decode_length(b"\xc0\x40") is None  # 3-byte form, only 2 bytes present
    assert decode_length(b"") is None


def test_decoder_reassembles_sentences_fed_byte_by_byte() -> None:
    long_word = "=comment=" + "x" * 300  # needs the 2-byte length form
    data = encode_sentence(["/ppp/secret/print", "?name=a"]) + encode_sentence(
        ["/ip/pool/add", long_word, "=name=é"]
    )
    decoder = SentenceDecoder()
    got = [s for i in range(len(data)) for s in decoder.feed(data[i : i + 1])]
    assert got == [["/ppp/secret/print", "?name=a"], ["/ip/pool/add", long_word, "=name=é"]]


def test_non_utf8_bytes_survive_a_round_trip() -> None:
    raw = b"\x0a=name=caf\xe9"  # Latin-1 from a client using encoding="latin-1"
    [[word]] = SentenceDecoder().feed(raw + b"\x00")
    assert encode_sentence([word]) == raw + b"\x00"


def test_read_sentence_over_a_socket() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(encode_sentence(["!done", "=ret=*1"]))
        assert read_sentence(b) == ["!done", "=ret=*1"]
        a.close()
        with pytest.raises(ConnectionError):
            read_sentence(b)


# ---------------------------------------------------------------------------------------
# pure semantics
# ---------------------------------------------------------------------------------------

ROW = {".id": "*1", "name": "alice", "disabled": "false", "shared-users": "5"}


@pytest.mark.parametrize(
    ("words", "passes"),
    [
        ([], True),
        (["?name"], True),
        (["?comment"], False),
        (["?-comment"], True),
        (["?name=alice"], True),
        (["?=name=alice"], True),
        (["?name=bob"], False),
        (["?=disabled=no"], True),  # librouteros sends False as "no"
        (["?<shared-users=10"], True),
        (["?>shared-users=10"], False),
        (["?name=bob", "?#!"], True),
        (["?name=bob", "?name=alice", "?#|"], True),
        (["?name=bob", "?name=alice", "?#&"], False),
        (["?name=bob", "?name=alice"], False),
        (["?name=alice", "?name=bob", "?#1"], True),  # index at end replaces the stack
        (["?name=bob", "?name=alice", "?#0"], True),
        (["?name=bob", "?#.|"], False),
    ],
)
def test_query_stack(words: list[str], passes: bool) -> None:
    assert compile_query(words)(ROW) is passes


def test_query_stack_underflow_traps() -> None:
    with pytest.raises(Trap):
        compile_query(["?#|"])(ROW)


@pytest.mark.parametrize(
    ("text", "printed"),
    [("30", "30s"), ("1h30m", "1h30m"), ("300ms", "300ms"), ("00:02:00", "2m"), ("0", "0s")],
)
def test_time_values_print_like_routeros(text: str, printed: str) -> None:
    ms = parse_time_ms(text)
    assert ms is not None
    assert format_time(ms) == printed


# ---------------------------------------------------------------------------------------
# over TCP with librouteros
# ---------------------------------------------------------------------------------------


@pytest.fixture
def router() -> Iterator[SimulatedRouter]:
    with SimulatedRouter(password=PASSWORD, identity="sim-1") as r:
        yield r


def connect(router: SimulatedRouter, **kw: object) -> librouteros.api.Api:
    return librouteros.connect(
        router.host, username="admin", password=PASSWORD, port=router.port, **kw
    )


@pytest.fixture
def api(router: SimulatedRouter) -> Iterator[librouteros.api.Api]:
    conn = connect(router)
    yield conn
    conn.close()


class Raw:
    """A bare socket client, for what librouteros cannot send or parse (tags, !empty)."""

    def __init__(self, router: SimulatedRouter) -> None:
        self.sock = socket.create_connection((router.host, router.port), timeout=5)

    def send(self, *words: str) -> None:
        self.sock.sendall(encode_sentence(words))

    def reply(self) -> list[list[str]]:
        """Sentences up to and including `!done` (or a `!fatal`)."""
        out = []
        while True:
            sentence = read_sentence(self.sock)
            out.append(sentence)
            if sentence[0] in ("!done", "!fatal"):
                return out

    def login(self) -> None:
        self.send("/login", "=name=admin", f"=password={PASSWORD}")
        assert self.reply() == [["!done"]]

    def close(self) -> None:
        self.sock.close()


def test_login_good_and_bad(router: SimulatedRouter) -> None:
    connect(router).close()
    with pytest.raises(TrapError, match="invalid user name or password"):
        librouteros.connect(router.host, username="admin", password="nope", port=router.port)
    assert router.stats.logins == 1


def test_connection_stays_usable_after_a_failed_login(router: SimulatedRouter) -> None:
    raw = Raw(router)
    raw.send("/login", "=name=admin", "=password=wrong")
    assert raw.reply() == [["!trap", "=message=invalid user name or password (6)"], ["!done"]]
    raw.login()
    raw.send("/system/identity/print")
    assert raw.reply() == [["!re", "=name=sim-1"], ["!done"]]
    raw.close()


def test_challenge_login_still_answered(router: SimulatedRouter) -> None:
    connect(router, login_method=token).close()


def test_commands_before_login_are_fatal(router: SimulatedRouter) -> None:
    raw = Raw(router)
    raw.send("/ppp/secret/print")
    assert raw.reply() == [["!fatal", "not logged in"]]
    with pytest.raises(ConnectionError):
        read_sentence(raw.sock)
    raw.close()


def test_quit_is_fatal_for_librouteros(api: librouteros.api.Api) -> None:
    with pytest.raises(FatalError, match="session terminated on request"):
        list(api("/quit"))


def test_builtin_profiles(api: librouteros.api.Api) -> None:
    rows = list(api.path("ppp", "profile"))
    assert [(r[".id"], r["name"], r["default"]) for r in rows] == [
        ("*0", "default", True),
        ("*FFFFFFFE", "default-encryption", True),
    ]
    [hs] = api.path("ip", "hotspot", "user", "profile")
    assert (hs[".id"], hs["name"], hs["shared-users"]) == ("*0", "default", 1)


def test_add_print_set_remove_round_trip(api: librouteros.api.Api, router: SimulatedRouter) -> None:
    pools = api.path("ip", "pool")
    profiles = api.path("ppp", "profile")
    secrets = api.path("ppp", "secret")
    assert pools.add(name="pool-a", ranges="10.0.0.2-10.0.0.254") == "*1"
    assert profiles.add(name="10M", **{"remote-address": "pool-a", "rate-limit": "2M/10M"}) == "*1"
    sid = secrets.add(name="alice", password="pw", profile="10M", service="pppoe", comment="c1")
    assert sid == "*1"
    assert secrets.add(name="bob", password="pw") == "*2"

    [alice, bob] = list(secrets)
    assert alice == {
        ".id": "*1",
        "name": "alice",
        "password": "pw",
        "service": "pppoe",
        "profile": "10M",
        "disabled": False,
        "comment": "c1",
    }
    assert (bob["profile"], bob["service"], "comment" in bob) == ("default", "any", False)

    secrets.update(**{".id": sid, "disabled": True, "comment": "c2"})
    secrets.update(**{".id": "bob", "profile": "10M"})  # name accepted as .id
    rows = {r["name"]: r for r in secrets}
    assert (rows["alice"]["disabled"], rows["alice"]["comment"]) == (True, "c2")
    assert rows["bob"]["profile"] == "10M"

    secrets.remove("*1", "*2")
    assert list(secrets) == []
    assert router.items("/ppp/profile")[1]["rate-limit"] == "2M/10M"


def test_renaming_a_profile_keeps_secrets_pointing_at_it(
    api: librouteros.api.Api, router: SimulatedRouter
) -> None:
    pid = router.add_item("/ppp/profile", name="old")
    router.add_item("/ppp/secret", name="u", profile="old")
    api.path("ppp", "profile").update(**{".id": pid, "name": "new"})
    assert router.items("/ppp/secret")[0]["profile"] == "new"


@pytest.mark.parametrize(
    ("menu", "props", "wording"),
    [
        ("/ppp/secret", {"name": "u"}, "secret with the same name already exists"),
        ("/queue/simple", {"name": "q", "target": "10.0.0.5"}, "already have such name"),
        ("/ip/hotspot/user", {"name": "u"}, "already have user with this name for this server"),
        ("/ip/firewall/address-list", {"list": "l", "address": "10.0.0.5"}, "already have such"),
        ("/ip/pool", {"name": "p", "ranges": "10.0.0.1"}, "already have such name"),
        ("/ppp/profile", {"name": "p"}, "already have such name"),
        ("/ip/hotspot/user/profile", {"name": "p"}, "already have such name"),
    ],
)
def test_duplicates_trap(
    api: librouteros.api.Api, menu: str, props: dict[str, str], wording: str
) -> None:
    path = api.path(*menu.strip("/").split("/"))
    path.add(**props)
    with pytest.raises(TrapError, match="already") as info:
        path.add(**props)
    assert wording in info.value.message


def test_hotspot_profiles_have_no_comment(api: librouteros.api.Api) -> None:
    for menu in (("ip", "hotspot", "user", "profile"), ("ip", "hotspot", "profile")):
        with pytest.raises(TrapError, match="unknown parameter comment"):
            api.path(*menu).add(name="p", comment="managed")


def test_default_profiles_cannot_be_removed(api: librouteros.api.Api) -> None:
    for menu, ids in [
        (("ppp", "profile"), ("*0", "*FFFFFFFE")),
        (("ip", "hotspot", "user", "profile"), ("*0",)),
    ]:
        for id_ in ids:
            with pytest.raises(TrapError, match="can not remove default"):
                api.path(*menu).remove(id_)
    assert len(list(api.path("ppp", "profile"))) == 2


def test_references_must_exist(api: librouteros.api.Api, router: SimulatedRouter) -> None:
    with pytest.raises(TrapError, match="input does not match any value of profile"):
        api.path("ppp", "secret").add(name="u", profile="missing")
    with pytest.raises(TrapError, match="input does not match any value of profile"):
        api.path("ip", "hotspot", "user").add(name="u", profile="missing")
    with pytest.raises(TrapError, match="input does not match any value of remote-address"):
        api.path("ppp", "profile").add(name="p", **{"remote-address": "no-pool"})
    with pytest.raises(TrapError, match="input does not match any value of address-pool"):
        api.path("ip", "hotspot", "user", "profile").add(name="p", **{"address-pool": "x"})
    # A pool still named by a profile may be removed: RouterOS allows it.
    pool = router.add_item("/ip/pool", name="pool-a", ranges="10.0.0.0/24")
    router.add_item("/ppp/profile", name="p", remote_address="pool-a")
    api.path("ip", "pool").remove(pool)
    assert router.items("/ip/pool") == []


@pytest.mark.parametrize(
    ("menu", "props", "wording"),
    [
        (("ip", "pool"), {"name": "p", "ranges": "10.0.0.9-10.0.0.1"}, "ranges"),
        (("ip", "pool"), {"name": "p", "ranges": "10.0.0.300"}, "ranges"),
        (("ppp", "profile"), {"name": "p", "rate-limit": "fast"}, "rate-limit"),
        (("ppp", "profile"), {"name": "p", "rate-limit": "2M/10M 4M 3M 8 9"}, "rate-limit"),
        (("queue", "simple"), {"target": "10.0.0.5", "max-limit": "10Q"}, "max-limit"),
        (("ppp", "secret"), {"name": "u", "disabled": "maybe"}, "disabled"),
        (("ppp", "secret"), {"name": "u", "service": "telnet"}, "service"),
    ],
)
def test_bad_values_trap_with_category_1(
    api: librouteros.api.Api, menu: tuple[str, ...], props: dict[str, str], wording: str
) -> None:
    with pytest.raises(TrapError, match=wording) as info:
        api.path(*menu).add(**props)
    assert info.value.category == 1


def test_full_rate_limit_grammar_accepted(api: librouteros.api.Api) -> None:
    rate = "2M/10M 4M/20M 1500k/8M 16/16 8 1M/5M"
    api.path("ppp", "profile").add(name="p", **{"rate-limit": rate})
    [row] = api.path("ppp", "profile").select(Key("rate-limit")).where(Key("name") == "p")
    assert row == {"rate-limit": rate}


def test_missing_required_property_traps(api: librouteros.api.Api) -> None:
    with pytest.raises(TrapError, match="name"):
        api.path("ppp", "secret").add(password="x")
    with pytest.raises(TrapError, match="target"):
        api.path("queue", "simple").add(name="q")


def test_queue_rates_print_as_integers(api: librouteros.api.Api) -> None:
    qid = api.path("queue", "simple").add(
        target="10.0.0.5", **{"max-limit": "10M/20M", "burst-time": "8", "limit-at": "512k"}
    )
    [q] = api.path("queue", "simple")
    assert q[".id"] == qid
    assert q["name"] == "queue1"
    assert q["target"] == "10.0.0.5/32"
    assert q["max-limit"] == "10000000/20000000"
    assert q["limit-at"] == "512000/512000"
    assert q["burst-time"] == "8s/8s"
    assert (q["priority"], q["parent"], q["burst-limit"]) == ("8/8", "none", "0/0")


def test_proplist_limits_columns(api: librouteros.api.Api) -> None:
    api.path("ppp", "secret").add(name="alice", password="pw")
    assert list(api("/ppp/secret/print", **{".proplist": "name"})) == [{"name": "alice"}]
    rows = list(api.path("ppp", "secret").select(Key(".id"), Key("profile"), Key("nope")))
    assert rows == [{".id": "*1", "profile": "default"}]


def test_queries(api: librouteros.api.Api, router: SimulatedRouter) -> None:
    for name in ("a", "b", "c"):
        router.add_item("/ppp/secret", name=name, disabled=name == "b")
    secrets = api.path("ppp", "secret")
    name = Key("name")

    def names(*where: object) -> list[str]:
        return [r["name"] for r in secrets.select(name).where(*where)]

    assert names(name == "b") == ["b"]
    assert names(Or(name == "a", name == "c")) == ["a", "c"]
    assert names(name.In("a", "b")) == ["a", "b"]
    assert names(name != "a") == ["b", "c"]
    assert names(And(name != "a", Key("disabled") == False)) == ["c"]  # noqa: E712
    assert [r["name"] for r in api.rawCmd("/ppp/secret/print", "?-comment", "?name=c")] == ["c"]


def test_tags_are_echoed_on_every_reply_sentence(router: SimulatedRouter) -> None:
    router.add_item("/ip/pool", name="p", ranges="10.0.0.1")
    raw = Raw(router)
    raw.login()
    raw.send("/ip/pool/print", "=.proplist=name", ".tag=7")
    assert raw.reply() == [["!re", "=name=p", ".tag=7"], ["!done", ".tag=7"]]
    raw.send("/ip/pool/add", "=name=p", "=ranges=10.0.0.2", ".tag=8")
    assert raw.reply() == [
        ["!trap", "=message=failure: already have such name", ".tag=8"],
        ["!done", ".tag=8"],
    ]
    raw.send("/cancel", "=tag=7", ".tag=9")
    assert raw.reply() == [["!done", ".tag=9"]]
    raw.close()


def test_empty_print_sends_empty_then_done(router: SimulatedRouter) -> None:
    raw = Raw(router)
    raw.login()
    raw.send("/ppp/secret/print")
    assert raw.reply() == [["!empty"], ["!done"]]
    raw.send("/ppp/secret/print", "=count-only=")
    assert raw.reply() == [["!done", "=ret=0"]]
    raw.close()


def test_singletons(api: librouteros.api.Api, router: SimulatedRouter) -> None:
    assert list(api.path("system", "identity")) == [{"name": "sim-1"}]
    assert list(api.path("radius", "incoming")) == [{"accept": False, "port": 3799}]
    api.path("radius", "incoming").update(accept=True)
    api.path("ppp", "aaa").update(**{"use-radius": "yes", "interim-update": "5m"})
    [aaa] = api.path("ppp", "aaa")
    assert aaa == {"use-radius": True, "accounting": True, "interim-update": "5m"}
    assert router.items("/radius/incoming") == [{"accept": "true", "port": "3799"}]


def test_unset_enable_disable(api: librouteros.api.Api, router: SimulatedRouter) -> None:
    rid = api.path("radius").add(
        service="ppp,hotspot", address="10.9.9.9", secret="s", timeout="1s"
    )
    list(api("/radius/disable", **{".id": rid}))
    assert router.items("/radius")[0]["disabled"] == "true"
    list(api("/radius/enable", **{".id": rid}))
    list(api("/radius/unset", **{".id": rid, "value-name": "timeout"}))
    [row] = router.items("/radius")
    assert (row["disabled"], row["timeout"], row["service"]) == ("false", "300ms", "ppp,hotspot")


def test_move_reorders_radius_servers(api: librouteros.api.Api, router: SimulatedRouter) -> None:
    radius = api.path("radius")
    a, b, c = (radius.add(service="ppp", address=f"10.0.0.{i}", secret="s") for i in (1, 2, 3))

    def order() -> list[str]:
        return [r["address"] for r in radius]

    tuple(radius("move", numbers=c, destination=a))  # before the destination
    assert order() == ["10.0.0.3", "10.0.0.1", "10.0.0.2"]
    tuple(radius("move", numbers=c))  # no destination: to the end
    assert order() == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    tuple(radius("move", numbers=f"{b},{c}", destination=a))
    assert order() == ["10.0.0.2", "10.0.0.3", "10.0.0.1"]
    d = radius.add(service="hotspot", address="10.0.0.4", secret="s")  # added at the end
    radius.remove(b)
    assert order() == ["10.0.0.3", "10.0.0.1", "10.0.0.4"]
    router.move_item("/radius", d, a)
    assert [r["address"] for r in router.items("/radius")] == ["10.0.0.3", "10.0.0.4", "10.0.0.1"]
    with pytest.raises(TrapError, match="no such item"):
        tuple(radius("move", numbers="*99", destination=a))
    with pytest.raises(TrapError, match=r"no such command or directory \(move\)"):
        tuple(api.path("ppp", "secret")("move", numbers="*1"))


def test_unknown_command_and_missing_item(api: librouteros.api.Api) -> None:
    with pytest.raises(TrapError, match=r"no such command or directory \(secrets\)"):
        list(api("/ppp/secrets/print"))
    with pytest.raises(TrapError, match=r"no such command or directory \(add\)"):
        api.path("ppp", "active").add(name="x")
    with pytest.raises(TrapError, match="no such item"):
        api.path("ppp", "secret").update(**{".id": "*99", "comment": "x"})
    with pytest.raises(TrapError, match="no such item"):
        api.path("ppp", "secret").remove("ghost")


def test_sessions_are_kicked_by_remove(api: librouteros.api.Api, router: SimulatedRouter) -> None:
    sid = router.add_item("/ppp/active", name="alice", service="pppoe", address="10.0.0.7")
    [row] = api.path("ppp", "active")
    assert (row["name"], row["address"], row["radius"]) == ("alice", "10.0.0.7", False)
    api.path("ppp", "active").remove(sid)
    assert router.items("/ppp/active") == []


def test_dynamic_entries_cannot_be_changed(
    api: librouteros.api.Api, router: SimulatedRouter
) -> None:
    qid = router.add_item("/queue/simple", name="<pppoe-alice>", target="10.0.0.7", dynamic=True)
    with pytest.raises(TrapError, match="dynamic"):
        api.path("queue", "simple").update(**{".id": qid, "max-limit": "1M/1M"})


def test_test_helpers_validate_like_the_api(router: SimulatedRouter) -> None:
    pid = router.add_item("/ppp/profile", name="p", rate_limit="1M/2M", only_one="yes")
    router.set_item("/ppp/profile", pid, comment="hand-made")
    [row] = [r for r in router.items("/ppp/profile") if r[".id"] == pid]
    assert (row["rate-limit"], row["only-one"], row["comment"]) == ("1M/2M", "yes", "hand-made")
    with pytest.raises(Trap, match="already have such name"):
        router.add_item("/ppp/profile", name="p")
    router.remove_item("/ppp/profile", pid)
    assert len(router.items("/ppp/profile")) == 2


def test_non_ascii_comment_round_trips(router: SimulatedRouter) -> None:
    conn = connect(router, encoding="utf-8")
    conn.path("ppp", "secret").add(name="u", comment="Zürich – café")
    assert router.items("/ppp/secret")[0]["comment"] == "Zürich – café"
    assert next(iter(conn.path("ppp", "secret")))["comment"] == "Zürich – café"
    conn.close()


# -- faults and counters ----------------------------------------------------------------


def test_latency_delays_every_reply(api: librouteros.api.Api, router: SimulatedRouter) -> None:
    router.latency = 0.15
    started = time.monotonic()
    list(api.path("ppp", "profile"))
    assert time.monotonic() - started >= 0.15


def test_latency_is_a_round_trip_so_pipelined_commands_overlap(router: SimulatedRouter) -> None:
    """Ten commands sent at once come back after about one round trip, not ten, in
    order, each with its tag; each reply still waits its full round trip."""
    raw = Raw(router)
    raw.login()
    router.latency = 0.5
    started = time.monotonic()
    raw.sock.sendall(
        b"".join(
            encode_sentence(["/ip/pool/add", f"=name=p{i}", "=ranges=10.0.0.1", f".tag={i}"])
            for i in range(10)
        )
    )
    tags = [raw.reply()[-1] for _ in range(10)]
    took = time.monotonic() - started
    assert tags == [["!done", f"=ret=*{i + 1:X}", f".tag={i}"] for i in range(10)]
    assert 0.5 <= took < 2.5  # one-at-a-time would take 5 s
    raw.close()


def test_drop_after_still_delivers_what_was_answered_before_it(router: SimulatedRouter) -> None:
    raw = Raw(router)
    raw.login()
    router.latency = 0.05
    router.drop_after = 2
    raw.sock.sendall(
        b"".join(
            encode_sentence(["/ip/pool/add", f"=name=p{i}", "=ranges=10.0.0.1", f".tag={i}"])
            for i in range(4)
        )
    )
    assert [raw.reply()[-1][-1] for _ in range(2)] == [".tag=0", ".tag=1"]
    with pytest.raises(ConnectionError):
        raw.reply()
    assert [p["name"] for p in router.items("/ip/pool")] == ["p0", "p1"]  # the rest never ran
    raw.close()


def test_drop_after_closes_without_answering(
    api: librouteros.api.Api, router: SimulatedRouter
) -> None:
    router.drop_after = 1
    list(api.path("ppp", "profile"))  # still answered
    with pytest.raises((ConnectionClosed, OSError)):
        list(api.path("ppp", "profile"))
    assert router.drop_after is None
    connect(router).close()


def test_trap_rate_one_traps_every_write(api: librouteros.api.Api, router: SimulatedRouter) -> None:
    router.trap_rate = 1.0
    for _ in range(3):
        with pytest.raises(TrapError, match="simulated fault") as info:
            api.path("ip", "pool").add(name="p", ranges="10.0.0.1")
        assert info.value.category == 4
    assert len(list(api.path("ppp", "profile"))) == 2  # reads are untouched
    assert router.items("/ip/pool") == []


def test_refuse_then_listen_again_on_the_same_port(router: SimulatedRouter) -> None:
    conn = connect(router)
    port = router.port
    router.refuse = True
    with pytest.raises(OSError):
        connect(router, timeout=1)
    with pytest.raises((ConnectionClosed, OSError)):
        list(conn.path("ppp", "profile"))  # open connections are dropped too
    conn.close()
    router.refuse = False
    assert router.port == port
    connect(router).close()


def test_dead_router_accepts_but_never_answers(router: SimulatedRouter) -> None:
    router.dead = True
    with pytest.raises(TimeoutError):
        connect(router, timeout=0.3)
    router.dead = False
    connect(router).close()


def test_stats_count_reads_writes_and_traps(
    api: librouteros.api.Api, router: SimulatedRouter
) -> None:
    router.reset_stats()
    list(api.path("ppp", "secret"))
    list(api.path("ppp", "secret"))
    api.path("ppp", "secret").add(name="u")
    with pytest.raises(TrapError):
        api.path("ppp", "secret").add(name="u")
    s = router.stats
    assert (s.reads, s.writes, s.traps, s.commands) == (2, 2, 1, 4)
    assert s.reads_by_menu == {"/ppp/secret": 2}
    assert s.writes_by_menu == {"/ppp/secret": 2}
    router.reset_stats()
    assert (s.reads, s.writes, s.reads_by_menu, s.connections) == (0, 0, {}, 0)


def test_fleet_of_twenty_routers_each_answer() -> None:
    with SimulatedFleet(20, password=PASSWORD) as fleet:
        assert len({r.port for r in fleet.routers}) == 20
        for i, r in enumerate(fleet.routers):
            r.set_item("/system/identity", "", name=f"r{i}")
        for i, r in enumerate(fleet.routers):
            conn = connect(r)
            assert list(conn.path("system", "identity")) == [{"name": f"r{i}"}]
            conn.close()
    with pytest.raises(OSError):
        connect(fleet.routers[0], timeout=1)


def test_module_runs_a_router_in_the_foreground() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "nas_adapters.routeros_sim", "--port", "0", "--password", "x"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],  # the repo root, so `-m` finds the package
    ) as proc:
        try:
            assert proc.stdout is not None
            m = re.search(r":(\d+)$", proc.stdout.readline().strip())
            assert m
            conn = librouteros.connect("127.0.0.1", username="admin", password="x", port=int(m[1]))
            assert list(conn.path("system", "identity")) == [{"name": "MikroTik"}]
            conn.close()
        finally:
            proc.terminate()
