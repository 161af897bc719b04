"""The pipelined writer's bookkeeping (pure): what may be sent while others are in flight."""

from __future__ import annotations

from provisioner.planning.plan import WAIT, Action, Change, PropChange, Sequencer

POOL = Change("/ip/pool", "p", Action.add)
PROFILE = Change("/ppp/profile", "home", Action.add, needs=(("/ip/pool", "p"),))
SECRET = Change("/ppp/secret", "alice", Action.add, needs=(("/ppp/profile", "home"),))
OTHER = Change("/ppp/secret", "bob", Action.set, "*9")
RADIUS = Change("/radius", "10.0.0.1", Action.add)
MOVE = Change(
    "/radius",
    "10.0.0.1",
    Action.move,
    None,
    (PropChange("destination", None, "*1"),),
    needs=(("/radius", "10.0.0.1"),),
)


def test_a_change_waits_while_what_it_needs_is_in_flight() -> None:
    seq = Sequencer()
    assert seq.next_step(POOL) == POOL
    assert seq.next_step(PROFILE) == WAIT
    assert seq.next_step(OTHER) == OTHER  # needs nothing: goes at once
    seq.answered(POOL, "*1", refused=False)
    assert seq.next_step(PROFILE) == PROFILE


def test_what_relies_on_a_refused_change_is_held_back_transitively() -> None:
    seq = Sequencer()
    seq.next_step(POOL)
    seq.answered(POOL, None, refused=True)
    assert seq.next_step(PROFILE) == "skipped: its pool 'p' was refused"
    assert seq.next_step(SECRET) == "skipped: its profile 'home' was skipped"
    assert seq.undone == {
        ("/ip/pool", "p"): "refused",
        ("/ppp/profile", "home"): "skipped",
        ("/ppp/secret", "alice"): "skipped",
    }


def test_a_move_of_what_this_run_added_gets_its_new_id() -> None:
    seq = Sequencer()
    seq.next_step(RADIUS)
    assert seq.next_step(MOVE) == WAIT
    seq.answered(RADIUS, "*5", refused=False)
    step = seq.next_step(MOVE)
    assert isinstance(step, Change) and step.ros_id == "*5"
    lost = Sequencer()
    assert lost.next_step(Change("/radius", "x", Action.move, None)) == (
        "skipped: it is not on the router"
    )
