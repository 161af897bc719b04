"""A plan is plain, frozen data: printable, JSON round-trippable, and applied as written."""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from provisioner.mapping.menus import NOUN


class Action(enum.StrEnum):
    add = "add"
    set = "set"
    remove = "remove"
    conflict = "conflict"  # an object we do not own is in the way: reported, not written
    move = "move"  # ours placed before ``destination`` (the ``.id`` of a foreign entry)


SYMBOL = {
    Action.add: "+",
    Action.set: "~",
    Action.remove: "-",
    Action.conflict: "!",
    Action.move: "^",
}


@dataclass(frozen=True)
class PropChange:
    name: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class Change:
    menu: str
    key: str
    action: Action
    ros_id: str | None = None
    props: tuple[PropChange, ...] = ()
    reason: str = ""
    adopt: bool = False  # a set that also takes ownership of an unmarked object
    # (menu, key) of changes in the same plan this one relies on: an add (or rename) of the
    # pool or profile it names. When one of them is not done, this one is not sent.
    needs: tuple[tuple[str, str], ...] = ()

    def new_values(self) -> dict[str, str]:
        return {p.name: p.new or "" for p in self.props}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"menu": self.menu, "key": self.key, "action": str(self.action)}
        if self.ros_id:
            d["id"] = self.ros_id
        if self.props:
            d["props"] = [{"name": p.name, "old": p.old, "new": p.new} for p in self.props]
        if self.reason:
            d["reason"] = self.reason
        if self.adopt:
            d["adopt"] = True
        if self.needs:
            d["needs"] = [[menu, key] for menu, key in self.needs]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Change:
        return cls(
            menu=d["menu"],
            key=d["key"],
            action=Action(d["action"]),
            ros_id=d.get("id"),
            props=tuple(PropChange(p["name"], p["old"], p["new"]) for p in d.get("props", [])),
            reason=d.get("reason", ""),
            adopt=d.get("adopt", False),
            needs=tuple((menu, key) for menu, key in d.get("needs", [])),
        )

    def held_back(self, undone: Mapping[tuple[str, str], str]) -> str | None:
        """Why this change must not be sent, given the changes of its plan that were not
        done (``undone``: (menu, key) → ``refused`` or ``skipped``); None to send it."""
        for menu, key in self.needs:
            how = undone.get((menu, key))
            if how:
                return f"skipped: its {NOUN.get(menu, 'object')} '{key}' was {how}"
        return None


@dataclass(frozen=True)
class Plan:
    """Changes for one target (a router's name, or ``radius``), in the order to apply."""

    target: str
    changes: tuple[Change, ...] = ()
    error: str | None = None  # the target could not be read (unreachable, refused)
    kind: str = "routeros"  # routeros | radius

    @property
    def writes(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action is not Action.conflict)

    @property
    def conflicts(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action is Action.conflict)

    def counts(self) -> dict[str, int]:
        return {a.value: sum(1 for c in self.changes if c.action is a) for a in Action}

    @property
    def has_changes(self) -> bool:
        return bool(self.writes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "error": self.error,
            "summary": self.counts(),
            "changes": [c.to_dict() for c in self.changes],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        return cls(
            target=d["target"],
            kind=d.get("kind", "routeros"),
            error=d.get("error"),
            changes=tuple(Change.from_dict(c) for c in d.get("changes", [])),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class ObservedObject:
    """A row as the router printed it, values as strings; ``id`` is RouterOS's ``.id``."""

    menu: str
    id: str
    props: dict[str, str] = field(hash=False)


WAIT = "wait"  # Sequencer.next_step: a change it relies on is sent but not answered yet


class Sequencer:
    """What may be sent next when several changes are in flight at once (pipelined).

    A change goes only once every change it ``needs`` has been answered: when one of them
    was refused or held back, it is held back too (never sent); a move of what this run
    added is sent with the ``.id`` the add returned. Changes with no pending needs go at
    once, so the router still sees them in plan order. Pure bookkeeping: the adapter
    sends, reads and reports; this decides.
    """

    def __init__(self) -> None:
        self.undone: dict[tuple[str, str], str] = {}  # (menu, key) -> refused | skipped
        self.made: dict[tuple[str, str], str] = {}  # (menu, key) -> .id, of what was added
        self._in_flight: Counter[tuple[str, str]] = Counter()

    def next_step(self, change: Change) -> Change | str:
        """The change to send (a move's ``.id`` filled in), ``WAIT`` while something it
        needs is unanswered, or why it is held back (then it counts as not done)."""
        if any(self._in_flight[n] for n in change.needs):
            return WAIT
        why = change.held_back(self.undone)
        c = change
        if why is None and c.action is Action.move and c.ros_id is None:
            if (c.menu, c.key) in self.made:
                c = replace(c, ros_id=self.made[(c.menu, c.key)])
            else:
                why = "skipped: it is not on the router"
        if why is not None:
            self.undone[(c.menu, c.key)] = "skipped"
            return why
        self._in_flight[(c.menu, c.key)] += 1
        return c

    def answered(self, change: Change, ros_id: str | None, refused: bool) -> None:
        """Record the router's answer to a change ``next_step`` let go."""
        self._in_flight[(change.menu, change.key)] -= 1
        if refused:
            self.undone[(change.menu, change.key)] = "refused"
        elif change.action is Action.add and ros_id:
            self.made[(change.menu, change.key)] = ros_id
