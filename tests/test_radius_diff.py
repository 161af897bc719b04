"""The RADIUS planner (pure): desired rows vs the tables' rows → changes, as tables."""

from __future__ import annotations

import pytest

from provisioner.mapping.radius import NasRow, RadiusRow
from provisioner.planning.plan import Action, Change, Plan, PropChange
from provisioner.planning.radius_diff import (
    NAS_CONFLICT,
    ObservedNas,
    ObservedRow,
    diff_nas,
    diff_rows,
    diff_users,
    is_our_nas,
    radius_plan,
)

R = RadiusRow
S = ObservedRow  # a row as stored: (id, row)
ADD, SET, REMOVE, CONFLICT = Action.add, Action.set, Action.remove, Action.conflict
PW = R("radcheck", "alice", "Cleartext-Password", ":=", "pw")
EXP = R("radcheck", "alice", "Expiration", ":=", "Jan 01 2027 00:00:00")


def p(name: str, old: str | None, new: str | None) -> PropChange:
    return PropChange(name, old, new)


@pytest.mark.parametrize(
    ("table", "desired", "observed", "changes"),
    [
        pytest.param("radcheck", [PW, EXP], [S(1, PW), S(2, EXP)], [], id="converged"),
        pytest.param("radcheck", [PW], [], [
            Change("radcheck", "alice|Cleartext-Password", ADD, None, (p("op", None, ":="), p("value", None, "pw"))),
        ], id="missing-row-is-added"),
        pytest.param("radcheck", [PW], [S(4, R("radcheck", "alice", "Cleartext-Password", ":=", "old"))], [
            Change("radcheck", "alice|Cleartext-Password", SET, "4", (p("value", "old", "pw"),)),
        ], id="changed-value-is-one-set"),
        pytest.param("radcheck", [PW], [S(4, R("radcheck", "alice", "Cleartext-Password", "==", "pw"))], [
            Change("radcheck", "alice|Cleartext-Password", SET, "4", (p("op", "==", ":="),)),
        ], id="changed-op-is-one-set"),
        pytest.param("radcheck", [PW], [
            S(7, R("radcheck", "alice", "Cleartext-Password", ":=", "old")),
            S(3, PW),
            S(9, PW),
        ], [
            Change("radcheck", "alice|Cleartext-Password", SET, "7", (p("value", "old", "pw"),)),
            Change("radcheck", "alice|Cleartext-Password", REMOVE, "3"),
            Change("radcheck", "alice|Cleartext-Password", REMOVE, "9"),
        ], id="duplicates-first-kept-rest-removed"),
        pytest.param("radcheck", [PW], [S(1, PW), S(2, EXP)], [
            Change("radcheck", "alice|Expiration", REMOVE, "2"),
        ], id="managed-row-no-longer-wanted-is-removed"),
        pytest.param("radcheck", [], [S(2, EXP), S(1, PW), S(5, PW)], [
            Change("radcheck", "alice|Cleartext-Password", REMOVE, "1"),
            Change("radcheck", "alice|Cleartext-Password", REMOVE, "5"),
            Change("radcheck", "alice|Expiration", REMOVE, "2"),
        ], id="removes-by-key-then-as-read"),
        pytest.param("radreply", [PW, R("radreply", "alice", "Framed-IP-Address", ":=", "10.0.0.5")], [], [
            Change("radreply", "alice|Framed-IP-Address", ADD, None, (p("op", None, ":="), p("value", None, "10.0.0.5"))),
        ], id="other-tables-rows-are-ignored"),
        pytest.param("radgroupreply", [
            R("radgroupreply", "home", "Mikrotik-Rate-Limit", ":=", "5M/10M"),
            R("radgroupreply", "home", "Framed-Pool", ":=", "pool1"),
        ], [
            S(8, R("radgroupreply", "home", "Mikrotik-Rate-Limit", ":=", "2M/10M")),
        ], [
            Change("radgroupreply", "home|Framed-Pool", ADD, None, (p("op", None, ":="), p("value", None, "pool1"))),
            Change("radgroupreply", "home|Mikrotik-Rate-Limit", SET, "8", (p("value", "2M/10M", "5M/10M"),)),
        ], id="group-speed-change-and-new-pool-in-key-order"),
    ],
)  # fmt: skip
def test_diff_rows(
    table: str, desired: list[RadiusRow], observed: list[ObservedRow], changes: list[Change]
) -> None:
    assert diff_rows(table, desired, observed) == changes


OWNED = {"home", "biz", "provisioner-expired"}
IN_HOME = R("radusergroup", "alice", "home", "", "1")


@pytest.mark.parametrize(
    ("desired", "observed", "changes"),
    [
        pytest.param([IN_HOME], [S(1, IN_HOME)], [], id="converged"),
        pytest.param([IN_HOME], [S(1, IN_HOME), S(2, R("radusergroup", "alice", "vip-by-hand", "", "0"))], [],
                     id="hand-added-group-is-not-ours"),
        pytest.param([], [S(2, R("radusergroup", "alice", "vip-by-hand", "", "0"))], [],
                     id="hand-added-group-survives-the-user-leaving-every-group"),
        pytest.param([IN_HOME], [S(1, R("radusergroup", "alice", "biz", "", "1"))], [
            Change("radusergroup", "alice|home", ADD, None, (p("op", None, ""), p("value", None, "1"))),
            Change("radusergroup", "alice|biz", REMOVE, "1"),
        ], id="package-change-moves-between-our-groups"),
        pytest.param([R("radusergroup", "alice", "provisioner-expired", "", "0")], [S(1, IN_HOME)], [
            Change("radusergroup", "alice|provisioner-expired", ADD, None, (p("op", None, ""), p("value", None, "0"))),
            Change("radusergroup", "alice|home", REMOVE, "1"),
        ], id="cut-off-moves-to-the-expired-group"),
        pytest.param([IN_HOME], [S(1, R("radusergroup", "alice", "home", "anything", "5"))], [
            Change("radusergroup", "alice|home", SET, "1", (p("value", "5", "1"),)),
        ], id="priority-compared-op-ignored"),
    ],
)  # fmt: skip
def test_diff_radusergroup_touches_only_our_groups(
    desired: list[RadiusRow], observed: list[ObservedRow], changes: list[Change]
) -> None:
    assert diff_rows("radusergroup", desired, observed, OWNED) == changes


def test_radusergroup_with_no_owned_groups_touches_nothing_observed() -> None:
    assert diff_rows("radusergroup", [], [S(1, IN_HOME)]) == []


ROUTER = NasRow("10.9.0.1", "core-1", "sec", "other", "provisioner:router:7")
NAS_PROPS = ("shortname", "secret", "type", "description")


def nas(id_: int, row: NasRow) -> ObservedNas:
    return ObservedNas(id_, row)


def hand(host: str, description: str = "") -> NasRow:
    return NasRow(host, "byhand", "x", "other", description)


def test_diff_users_takes_a_non_customer_only_when_it_is_in_a_group_of_ours() -> None:
    """One range of usernames: a customer's rows are all in scope; a username that is no
    customer is a removed customer's leftover (its managed rows removed) only when it is
    in a group we own; otherwise it is an admin's own user and nothing of it is touched."""
    observed = [
        S(1, PW),
        S(2, R("radusergroup", "alice", "home", "", "1")),
        S(3, R("radcheck", "gone", "Cleartext-Password", ":=", "old")),
        S(4, R("radusergroup", "gone", "home", "", "1")),
        S(5, R("radusergroup", "gone", "staff", "", "2")),
        S(6, R("radcheck", "staffer", "Cleartext-Password", ":=", "mine")),
        S(7, R("radusergroup", "staffer", "staff", "", "1")),
        S(8, R("radcheck", "loner", "Cleartext-Password", ":=", "mine")),
        S(9, R("radcheck", "other", "Cleartext-Password", ":=", "x")),  # a customer of type other
    ]
    desired = [PW, R("radusergroup", "alice", "home", "", "1")]
    changes = diff_users(desired, observed, {"alice", "other"}, {"home", "expired"})
    assert [(c.menu, c.key, c.action, c.ros_id) for c in changes] == [
        ("radcheck", "gone|Cleartext-Password", REMOVE, "3"),
        ("radcheck", "other|Cleartext-Password", REMOVE, "9"),
        ("radusergroup", "gone|home", REMOVE, "4"),
    ]


@pytest.mark.parametrize(
    ("desired", "observed", "hosts", "changes"),
    [
        pytest.param([ROUTER], [nas(1, ROUTER)], None, [], id="converged"),
        pytest.param([ROUTER], [], None, [
            Change("nas", "10.9.0.1", ADD, None, (
                p("shortname", None, "core-1"), p("secret", None, "sec"),
                p("type", None, "other"), p("description", None, "provisioner:router:7"),
            )),
        ], id="new-router-is-added"),
        pytest.param([ROUTER], [nas(3, NasRow("10.9.0.1", "core-1", "old", "", "provisioner:router:7"))], None, [
            Change("nas", "10.9.0.1", SET, "3", (p("secret", "old", "sec"), p("type", "", "other"))),
        ], id="our-row-drifted-is-set"),
        pytest.param([ROUTER], [nas(3, hand("10.9.0.1"))], None, [
            Change("nas", "10.9.0.1", CONFLICT, "3", reason=NAS_CONFLICT),
        ], id="hand-made-row-at-our-address-is-a-conflict"),
        pytest.param([ROUTER], [nas(3, hand("10.9.0.1", "provisioner:customer:7"))], None, [
            Change("nas", "10.9.0.1", CONFLICT, "3", reason=NAS_CONFLICT),
        ], id="another-kinds-marker-is-not-a-routers"),
        pytest.param([], [nas(4, NasRow("10.9.0.2", "gone", "s", "other", "provisioner:router:8"))], None, [
            Change("nas", "10.9.0.2", REMOVE, "4"),
        ], id="our-row-no-longer-wanted-is-removed"),
        pytest.param([], [nas(4, NasRow("10.9.0.2", "gone", "s", "other", "provisioner:router:8"))], ["10.9.0.1"], [],
                     id="removal-limited-to-the-hosts-in-scope"),
        pytest.param([], [nas(4, NasRow("10.9.0.2", "gone", "s", "other", "provisioner:router:8"))], ["10.9.0.2"], [
            Change("nas", "10.9.0.2", REMOVE, "4"),
        ], id="removal-of-a-host-in-scope"),
        pytest.param([], [nas(5, hand("10.9.0.5"))], None, [], id="hand-made-row-never-removed"),
    ],
)  # fmt: skip
def test_diff_nas(
    desired: list[NasRow],
    observed: list[ObservedNas],
    hosts: list[str] | None,
    changes: list[Change],
) -> None:
    assert diff_nas(desired, observed, hosts) == changes


@pytest.mark.parametrize(
    ("description", "ours"),
    [
        ("provisioner:router:7", True),
        ("provisioner:router:", True),
        ("provisioner:router", False),
        ("provisioner:master:7", False),
        ("", False),
        ("router 7, by hand", False),
    ],
)
def test_is_our_nas(description: str, ours: bool) -> None:
    assert is_our_nas(NasRow("10.9.0.1", "r", "s", "other", description)) is ours


def test_plan_is_ordered_clients_groups_users_removes_last_per_table() -> None:
    changes = [
        Change("radusergroup", "alice|home", ADD),
        Change("radcheck", "bob|Cleartext-Password", REMOVE, "9"),
        Change("radcheck", "alice|Cleartext-Password", SET, "1"),
        Change("radgroupreply", "home|Mikrotik-Rate-Limit", SET, "2"),
        Change("radgroupcheck", "home|Simultaneous-Use", ADD),
        Change("nas", "10.9.0.2", REMOVE, "4"),
        Change("nas", "10.9.0.1", ADD),
    ]
    plan = radius_plan(changes)
    assert (plan.target, plan.kind) == ("radius", "radius")
    assert [(c.menu, c.key, c.action) for c in plan.changes] == [
        ("nas", "10.9.0.1", ADD),
        ("nas", "10.9.0.2", REMOVE),
        ("radgroupcheck", "home|Simultaneous-Use", ADD),
        ("radgroupreply", "home|Mikrotik-Rate-Limit", SET),
        ("radcheck", "alice|Cleartext-Password", SET),
        ("radcheck", "bob|Cleartext-Password", REMOVE),
        ("radusergroup", "alice|home", ADD),
    ]
    assert Plan.from_json(plan.to_json()) == plan
