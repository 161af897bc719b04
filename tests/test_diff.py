"""The planner (pure): ownership, conflicts, adoption, defaults, normalisation, order."""

from __future__ import annotations

from provisioner.mapping.routeros import DesiredObject
from provisioner.planning.diff import diff
from provisioner.planning.plan import Action, Change, ObservedObject, Plan, PropChange
from provisioner.planning.render import render, summary_line

PROFILE = "/ppp/profile"
POOL = "/ip/pool"
SECRET = "/ppp/secret"
QUEUE = "/queue/simple"
MARK = "provisioner:master:1"


def want(menu: str, name: str, **props: str) -> DesiredObject:
    return DesiredObject(
        menu, name, {"name": name, **{k.replace("_", "-"): v for k, v in props.items()}}
    )


def seen(menu: str, id_: str, name: str, **props: object) -> ObservedObject:
    return ObservedObject(
        menu, id_, {"name": name, **{k.replace("_", "-"): v for k, v in props.items()}}
    )


def test_converged_router_plans_nothing_despite_routeros_spellings() -> None:
    desired = [
        want(PROFILE, "home", rate_limit="5M/10M", only_one="yes", comment=MARK),
        want(
            QUEUE,
            "corp",
            target="10.0.0.5/32",
            max_limit="10M/20M",
            burst_time="8s/8s",
            priority="8/8",
            comment=MARK,
        ),
    ]
    observed = {
        PROFILE: [
            seen(PROFILE, "*2", "home", rate_limit="5000000/10000000", only_one=True, comment=MARK)
        ],
        QUEUE: [
            seen(
                QUEUE,
                "*5",
                "corp",
                target="10.0.0.5/32",
                max_limit="10000000/20000000",
                burst_time="8s/8s",
                priority="8/8",
                comment=MARK,
            )
        ],
    }
    assert diff("r1", desired, observed, {}).changes == ()


def test_changed_speed_is_one_set_with_old_and_new() -> None:
    plan = diff(
        "r1",
        [want(PROFILE, "home", rate_limit="5M/20M", comment=MARK)],
        {PROFILE: [seen(PROFILE, "*2", "home", rate_limit="5M/10M", comment=MARK)]},
        {},
    )
    assert plan.changes[0].action is Action.set
    assert plan.changes[0].props == (PropChange("rate-limit", "5M/10M", "5M/20M"),)
    assert plan.changes[0].ros_id == "*2"


def test_unmarked_object_with_our_name_is_a_conflict_unless_adopted() -> None:
    desired = [want(PROFILE, "home", rate_limit="5M/10M", comment=MARK)]
    observed = {PROFILE: [seen(PROFILE, "*7", "home", rate_limit="1M/1M")]}
    plan = diff("r1", desired, observed, {})
    assert [c.action for c in plan.changes] == [Action.conflict]
    assert not plan.writes
    adopted = diff("r1", desired, observed, {}, adopt=True)
    assert [(c.action, c.adopt) for c in adopted.changes] == [(Action.set, True)]


def test_hand_made_objects_and_defaults_are_never_removed() -> None:
    observed = {PROFILE: [
        seen(PROFILE, "*0", "default", default=True),
        seen(PROFILE, "*FFFFFFFE", "default-encryption", default=True),
        seen(PROFILE, "*9", "handmade", rate_limit="1M/1M"),
    ]}  # fmt: skip
    assert diff("r1", [], observed, {PROFILE: {"*0": "default"}}).changes == ()


def test_owned_objects_no_longer_wanted_are_removed_users_before_profiles_before_pools() -> None:
    observed = {
        POOL: [seen(POOL, "*1", "old-pool", comment="provisioner:pool:1")],
        PROFILE: [seen(PROFILE, "*2", "old", comment=MARK)],
        SECRET: [seen(SECRET, "*3", "alice", profile="old", comment="provisioner:customer:1")],
    }
    plan = diff("r1", [want(PROFILE, "new", comment=MARK)], observed, {})
    assert [(c.action, c.menu) for c in plan.changes] == [
        (Action.add, PROFILE), (Action.remove, SECRET), (Action.remove, PROFILE), (Action.remove, POOL),
    ]  # fmt: skip


def test_ownership_record_survives_rename_by_hand_and_missing_comment() -> None:
    # A hotspot profile has no comment: the registry's record (.id → key) is the proof.
    menu = "/ip/hotspot/user/profile"
    desired = [want(menu, "hs", rate_limit="1M/2M")]
    observed = {menu: [seen(menu, "*4", "hs-renamed", rate_limit="1M/2M")]}
    plan = diff("r1", desired, observed, {menu: {"*4": "hs"}})
    assert [(c.action, c.ros_id, c.props) for c in plan.changes] == [
        (Action.set, "*4", (PropChange("name", "hs-renamed", "hs"),))
    ]


def test_dynamic_objects_are_ignored() -> None:
    observed = {QUEUE: [seen(QUEUE, "*A", "<pppoe-alice>", dynamic=True, comment=MARK)]}
    assert diff("r1", [], observed, {QUEUE: {"*A": "x"}}).changes == ()


def test_plan_json_round_trip_and_render() -> None:
    plan = diff(
        "r1",
        [
            want(PROFILE, "home", rate_limit="5M/20M", comment=MARK),
            want(POOL, "p", ranges="10.0.0.2-10.0.0.9"),
        ],
        {PROFILE: [seen(PROFILE, "*2", "home", rate_limit="5M/10M", comment=MARK)]},
        {},
    )
    assert Plan.from_json(plan.to_json()) == plan
    text = render([plan])
    assert "~ home (*2)" in text and "rate-limit: '5M/10M' -> '5M/20M'" in text and "+ p" in text
    assert summary_line([plan]) == "1 to add, 1 to change, 0 to remove, 0 conflicts"


ACTIVE = "/ppp/active"
HS_USER = "/ip/hotspot/user"
HS_ACTIVE = "/ip/hotspot/active"
CUST = "provisioner:customer:7"


def session(menu: str, id_: str, user: str) -> ObservedObject:
    key = "user" if menu == HS_ACTIVE else "name"
    return ObservedObject(menu, id_, {key: user, "address": "10.0.0.9"})


def ends(plan: Plan) -> list[tuple[str, str, str | None, str]]:
    return [
        (c.menu, c.key, c.ros_id, c.reason)
        for c in plan.changes
        if c.menu in (ACTIVE, HS_ACTIVE)
    ]


def test_a_cut_off_users_live_session_is_ended_after_its_secret_is_disabled() -> None:
    desired = [want(SECRET, "alice", disabled="yes", comment=CUST)]
    observed = {
        SECRET: [seen(SECRET, "*A", "alice", disabled=False, comment=CUST)],
        ACTIVE: [session(ACTIVE, "*80000001", "alice"), session(ACTIVE, "*80000002", "bob")],
    }
    plan = diff("r1", desired, observed, {})
    assert [(c.menu, c.action) for c in plan.changes] == [
        (SECRET, Action.set),
        (ACTIVE, Action.remove),
    ]  # disable first, so the customer cannot log straight back in
    assert ends(plan) == [(ACTIVE, "alice", "*80000001", "ends the session: its user is disabled")]
    assert "# ends the session: its user is disabled" in render([plan])


def test_a_session_left_up_by_an_earlier_sync_is_ended_by_the_next() -> None:
    desired = [want(SECRET, "alice", disabled="yes", comment=CUST)]
    observed = {
        SECRET: [seen(SECRET, "*A", "alice", disabled=True, comment=CUST)],
        ACTIVE: [session(ACTIVE, "*80000001", "alice")],
    }
    assert ends(diff("r1", desired, observed, {})) == [
        (ACTIVE, "alice", "*80000001", "ends the session: its user is disabled")
    ]


def test_sessions_of_active_users_and_of_users_not_ours_are_left_alone() -> None:
    desired = [want(SECRET, "alice", disabled="no", comment=CUST)]
    observed = {
        SECRET: [
            seen(SECRET, "*A", "alice", disabled=False, comment=CUST),
            seen(SECRET, "*B", "hand", disabled=True, comment="made by hand"),
        ],
        ACTIVE: [session(ACTIVE, "*1", "alice"), session(ACTIVE, "*2", "hand")],
    }
    assert diff("r1", desired, observed, {}).changes == ()
    # Re-enabling a secret leaves its (already ended) session question alone too.
    observed[SECRET][0] = seen(SECRET, "*A", "alice", disabled=True, comment=CUST)
    assert ends(diff("r1", desired, observed, {})) == []


def test_a_new_profile_or_a_removed_user_ends_the_session() -> None:
    desired = [want(SECRET, "alice", profile="fast", disabled="no", comment=CUST)]
    observed = {
        SECRET: [
            seen(SECRET, "*A", "alice", profile="slow", disabled=False, comment=CUST),
            seen(SECRET, "*B", "gone", profile="slow", disabled=False, comment=CUST),
        ],
        ACTIVE: [session(ACTIVE, "*1", "alice"), session(ACTIVE, "*2", "gone")],
    }
    assert sorted(ends(diff("r1", desired, observed, {}))) == [
        (ACTIVE, "alice", "*1", "ends the session: new profile applies at the next login"),
        (ACTIVE, "gone", "*2", "ends the session: its user is removed"),
    ]


def test_hotspot_sessions_are_matched_by_user() -> None:
    desired = [want(HS_USER, "guest", disabled="yes", comment=CUST)]
    observed = {
        HS_USER: [seen(HS_USER, "*C", "guest", disabled=False, comment=CUST)],
        HS_ACTIVE: [session(HS_ACTIVE, "*D", "guest"), session(HS_ACTIVE, "*E", "other")],
    }
    assert ends(diff("r1", desired, observed, {})) == [
        (HS_ACTIVE, "guest", "*D", "ends the session: its user is disabled")
    ]


HS_PROFILE = "/ip/hotspot/user/profile"
RADIUS = "/radius"


def test_what_names_a_pool_or_profile_this_plan_adds_needs_that_add() -> None:
    desired = [
        want(POOL, "p1", ranges="10.0.0.2-10.0.0.9"),
        want(PROFILE, "home", remote_address="p1", local_address="10.0.0.1", comment=MARK),
        want(SECRET, "alice", profile="home", password="a", comment=CUST),
        want(SECRET, "bob", profile="home", password="new", comment=CUST),
    ]
    bob = seen(SECRET, "*B", "bob", profile="default", password="old", comment=CUST)
    observed = {SECRET: [bob]}
    plan = diff("r1", desired, observed, {})
    assert [(c.key, c.needs) for c in plan.changes] == [
        ("p1", ()),
        ("home", ((POOL, "p1"),)),
        ("alice", ((PROFILE, "home"),)),
        ("bob", ((PROFILE, "home"),)),
    ]
    assert Plan.from_json(plan.to_json()) == plan
    # A set that does not name the profile relies on nothing.
    observed[SECRET][0] = seen(SECRET, "*B", "bob", profile="home", password="old", comment=CUST)
    assert diff("r1", desired, observed, {}).changes[-1].needs == ()


def test_a_change_is_held_back_when_what_it_needs_was_not_done() -> None:
    change = Change(SECRET, "alice", Action.add, needs=((PROFILE, "home"),))
    assert change.held_back({}) is None
    assert change.held_back({(PROFILE, "other"): "refused"}) is None
    assert change.held_back({(PROFILE, "home"): "refused"}) == (
        "skipped: its profile 'home' was refused"
    )
    profile = Change(PROFILE, "home", Action.add, needs=((POOL, "p"),))
    assert profile.held_back({(POOL, "p"): "skipped"}) == "skipped: its pool 'p' was skipped"


def test_a_rename_back_is_needed_by_users_moved_onto_that_profile() -> None:
    desired = [
        want(HS_PROFILE, "hs", rate_limit="1M/2M"),
        want(HS_USER, "guest", profile="hs", comment=CUST),
    ]
    observed = {
        HS_PROFILE: [seen(HS_PROFILE, "*4", "hs-renamed", rate_limit="1M/2M")],
        HS_USER: [seen(HS_USER, "*C", "guest", profile="default", comment=CUST)],
    }
    plan = diff("r1", desired, observed, {HS_PROFILE: {"*4": "hs"}})
    assert [(c.key, [(p.name, p.old, p.new) for p in c.props], c.needs) for c in plan.changes] == [
        ("hs", [("name", "hs-renamed", "hs")], ()),
        ("guest", [("profile", "default", "hs")], ((HS_PROFILE, "hs"),)),
    ]


def test_references_to_our_object_renamed_by_hand_are_equal() -> None:
    # RouterOS follows a reference by .id: after the rename, the referrers print the new name.
    other = "provisioner:master:2"
    desired = [
        want(POOL, "p1", ranges="10.0.0.2-10.0.0.9", comment="provisioner:pool:1"),
        want(PROFILE, "home", remote_address="p1", comment=MARK),
        want(PROFILE, "other", comment=other),
        want(SECRET, "alice", profile="home", comment=CUST),
        want(SECRET, "bob", profile="other", comment=CUST),
    ]
    observed = {
        POOL: [seen(POOL, "*1", "p1-x", ranges="10.0.0.2-10.0.0.9", comment="provisioner:pool:1")],
        PROFILE: [
            seen(PROFILE, "*2", "home-x", remote_address="p1-x", comment=MARK),
            seen(PROFILE, "*3", "other", comment=other),
        ],
        SECRET: [
            seen(SECRET, "*A", "alice", profile="home-x", comment=CUST),
            seen(SECRET, "*B", "bob", profile="home-x", comment=CUST),
        ],
    }
    plan = diff("r1", desired, observed, {POOL: {"*1": "p1"}, PROFILE: {"*2": "home"}})
    assert [(c.menu, c.key, [(p.name, p.old, p.new) for p in c.props]) for c in plan.changes] == [
        (POOL, "p1", [("name", "p1-x", "p1")]),
        (PROFILE, "home", [("name", "home-x", "home")]),
        (SECRET, "bob", [("profile", "home-x", "other")]),  # moved to another profile: a set
    ]


def test_our_radius_entry_is_moved_before_a_foreign_one_for_the_same_service() -> None:
    ours = DesiredObject(
        RADIUS, "10.0.0.1", {"address": "10.0.0.1", "service": "ppp,hotspot", "comment": MARK}
    )

    def entry(id_: str, address: str, service: str, comment: str = "") -> ObservedObject:
        return ObservedObject(
            RADIUS, id_, {"address": address, "service": service, "comment": comment}
        )

    wifi, theirs = entry("*1", "10.8.8.8", "wireless"), entry("*2", "10.9.9.9", "hotspot")
    # Added behind them: the move follows the add and needs it.
    plan = diff("r1", [ours], {RADIUS: [wifi, theirs]}, {})
    assert [(c.action, c.ros_id, c.props, c.needs) for c in plan.changes] == [
        (Action.add, None, plan.changes[0].props, ()),
        (Action.move, None, (PropChange("destination", None, "*2"),), ((RADIUS, "10.0.0.1"),)),
    ]
    assert plan.changes[1].reason == (
        "before 10.9.9.9 (*2), not ours, for hotspot: RouterOS asks its /radius entries in order"
    )
    assert "    ^ 10.0.0.1\n" in render([plan]) and "1 to move" in summary_line([plan])
    assert Plan.from_json(plan.to_json()) == plan
    # Ours, already there but behind: moved by its .id. In front of them: nothing to do.
    mine = entry("*3", "10.0.0.1", "ppp,hotspot", MARK)
    [move] = diff("r1", [ours], {RADIUS: [wifi, theirs, mine]}, {}).changes
    assert (move.action, move.ros_id, move.needs) == (Action.move, "*3", ())
    assert diff("r1", [ours], {RADIUS: [wifi, mine, theirs]}, {}).changes == ()
    # Not ours (a conflict) is not ours to move.
    hand = entry("*3", "10.0.0.1", "ppp,hotspot")
    plan = diff("r1", [ours], {RADIUS: [theirs, hand]}, {})
    assert [c.action for c in plan.changes] == [Action.conflict]


def test_a_session_ended_for_a_new_profile_needs_that_change_but_a_cut_off_does_not() -> None:
    desired = [
        want(SECRET, "alice", profile="fast", disabled="no", comment=CUST),
        want(SECRET, "bob", disabled="yes", comment=CUST),
    ]
    observed = {
        SECRET: [
            seen(SECRET, "*A", "alice", profile="slow", disabled=False, comment=CUST),
            seen(SECRET, "*B", "bob", disabled=False, comment=CUST),
        ],
        ACTIVE: [session(ACTIVE, "*1", "alice"), session(ACTIVE, "*2", "bob")],
    }
    plan = diff("r1", desired, observed, {})
    # Kicked for nothing if the new profile was refused; a cut-off user goes regardless.
    assert {c.key: c.needs for c in plan.changes if c.menu == ACTIVE} == {
        "alice": ((SECRET, "alice"),),
        "bob": (),
    }
