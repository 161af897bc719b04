"""desired vs observed → a Plan (pure).

Rules: only objects we own are set or removed; an unmarked object holding a name we want
is a conflict (or, with ``adopt``, a set that takes it over); built-in default profiles
and dynamic objects are never touched; only managed properties are compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from provisioner.mapping.marker import parse_marker
from provisioner.mapping.menus import (
    ADDRESS_KEYED,
    DEFAULT_NAMES,
    FIRST_AMONG,
    MENU_ORDER,
    NO_COMMENT,
    NOUN,
    REFERENCES,
    SESSIONS,
    SINGLETONS,
    key_of,
)
from provisioner.mapping.routeros import DesiredObject
from provisioner.planning.normalize import essence, same, to_text
from provisioner.planning.plan import Action, Change, ObservedObject, Plan, PropChange

SECRET_PROPS = {"password", "secret"}
# RADIUS rows whose value is a credential (the key is "owner|attribute").
SECRET_ATTRIBUTES = ("|Cleartext-Password", "|User-Password", "|Crypt-Password")


def _is_secret(change: Change, prop: str) -> bool:
    if prop in SECRET_PROPS:
        return True
    return prop == "value" and change.key.endswith(SECRET_ATTRIBUTES)


_RANK = {m: i for i, m in enumerate(MENU_ORDER)}
_KEY_PROPS = ("name", "list", "address", "user")  # all key_of reads


def _key(menu: str, obj: ObservedObject) -> str:
    p = obj.props
    return key_of(menu, {k: to_text(p[k]) for k in _KEY_PROPS if k in p})


def is_marked(obj: ObservedObject) -> bool:
    return parse_marker(to_text(obj.props.get("comment", ""))) is not None


def is_untouchable(obj: ObservedObject) -> bool:
    p = obj.props
    return (
        to_text(p.get("dynamic")) == "true"
        or to_text(p.get("default")) == "true"
        or (obj.menu not in ADDRESS_KEYED and to_text(p.get("name")) in DEFAULT_NAMES)
    )


def _prop_changes(
    desired: DesiredObject,
    observed: ObservedObject | None,
    renamed: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[PropChange, ...]:
    """``renamed``: property → {name on the router → our key}, for references to objects of
    ours renamed by hand: RouterOS links by ``.id``, so the new name is still ours."""
    out: list[PropChange] = []
    if observed is None:
        return tuple(PropChange(name, None, new) for name, new in desired.props.items())
    have = observed.props
    for name, new in desired.props.items():
        old = have.get(name)
        if old is None:
            if essence(name, new) != "":
                out.append(PropChange(name, None, new))
            continue
        if renamed:
            names = renamed.get(name)
            if names and to_text(old) in names:
                if names[to_text(old)] != new:
                    out.append(PropChange(name, to_text(old), new))
                continue
        if old == new and type(old) is type(new):  # a converged router: most properties
            continue
        if same(name, old, new):
            continue
        out.append(PropChange(name, to_text(old), new))
    return tuple(out)


def _order(c: Change) -> tuple[int, int, str, int]:
    idx = _RANK.get(c.menu, len(MENU_ORDER))
    if c.action is Action.remove:
        # Removes after every add/set, users before the profiles and pools they used.
        return (1, -idx, c.key, 0)
    # A move after the add of what it moves.
    return (0, idx, c.key, 1 if c.action is Action.move else 0)


def diff(
    target: str,
    desired: Iterable[DesiredObject],
    observed: Mapping[str, list[ObservedObject]],
    owned: Mapping[str, Mapping[str, str]],
    *,
    adopt: bool = False,
    menus: Iterable[str] | None = None,
) -> Plan:
    """Plan the writes that make ``observed`` match ``desired`` on one router.

    ``owned`` maps menu → {ros id → key} from the registry's ownership records.
    ``menus`` limits removal to menus that were read (default: every menu desired or read).
    """
    desired = list(desired)
    changes: list[Change] = []
    by_menu: dict[str, list[DesiredObject]] = {}
    for d in desired:
        by_menu.setdefault(d.menu, []).append(d)
    menu_set = set(menus) if menus is not None else set(by_menu) | set(observed)
    ours: dict[str, dict[str, str]] = {}
    # menu → {name on the router → our key}: objects of ours renamed by hand.
    renamed: dict[str, dict[str, str]] = {}

    for menu in sorted(menu_set, key=lambda m: MENU_ORDER.index(m) if m in MENU_ORDER else 99):
        rows = [o for o in observed.get(menu, []) if not is_untouchable(o)]
        mine_ids = ours[menu] = dict(owned.get(menu, {}))
        if menu not in NO_COMMENT:
            for o in rows:
                if o.id not in mine_ids and is_marked(o):
                    mine_ids[o.id] = _key(menu, o)
        by_id = {o.id: o for o in rows}
        # Rows by name, made when first needed: on a converged router every desired object
        # is found among ours by its recorded key, and keying 2,000 rows is wasted.
        by_key: dict[str, ObservedObject] | None = None
        ours_by_key: dict[str, list[str]] = {}  # recorded key -> our ids still on the router
        for i, k in mine_ids.items():
            if i in by_id:
                ours_by_key.setdefault(k, []).append(i)
        matched: set[str] = set()
        # Only references to objects of ours renamed by hand (usually none).
        refs = {
            prop: names
            for src, prop, dst in REFERENCES
            if src == menu and (names := renamed.get(dst))
        }
        placed: dict[str, str | None] = {}  # our key → .id (None: added by this plan)

        for d in by_menu.get(menu, []):
            if menu in SINGLETONS:
                current = rows[0] if rows else ObservedObject(menu, "", {})
                props = _prop_changes(d, current)
                if props:
                    changes.append(Change(menu, d.key, Action.set, None, props))
                continue
            # Ours first, by the recorded key (survives a rename by hand), then by name.
            obj = None
            for i in ours_by_key.get(d.key, ()):
                if i not in matched:
                    obj = by_id[i]
                    break
            if obj is None:
                if by_key is None:
                    by_key = {_key(menu, o): o for o in rows}
                obj = by_key.get(d.key)
            if obj is None:
                changes.append(Change(menu, d.key, Action.add, None, _prop_changes(d, None)))
                placed[d.key] = None
                continue
            matched.add(obj.id)
            props = _prop_changes(d, obj, refs)
            if obj.id in mine_ids:
                name = to_text(obj.props.get("name"))
                if menu not in ADDRESS_KEYED and name and name != d.key:
                    renamed.setdefault(menu, {})[name] = d.key
                placed[d.key] = obj.id
                if props:
                    changes.append(Change(menu, d.key, Action.set, obj.id, props))
            elif adopt:
                placed[d.key] = obj.id
                changes.append(Change(menu, d.key, Action.set, obj.id, props, adopt=True))
            else:
                changes.append(
                    Change(
                        menu,
                        d.key,
                        Action.conflict,
                        obj.id,
                        props,
                        reason="an object not made by provisioner has this name; "
                        "rename it or adopt it (--adopt)",
                    )
                )

        if menu in SINGLETONS:
            continue
        if menu in FIRST_AMONG:
            changes += _moves_first(menu, rows, placed, by_menu[menu], mine_ids)
        for ros_id in mine_ids:
            if ros_id in by_id and ros_id not in matched:
                o = by_id[ros_id]
                key = _key(menu, o)
                changes.append(Change(menu, key, Action.remove, ros_id))

    for menu in menu_set & SESSIONS.keys():
        changes += _session_ends(menu, observed, ours, changes)
    changes = _held_back(_with_needs(changes))
    return Plan(target=target, changes=tuple(sorted(changes, key=_order)))


def _held_back(changes: list[Change]) -> list[Change]:
    """An add or set that would point at an object not ours (a conflict: a hand-made
    profile with the name we want) is held back as a conflict of its own: sent, it would
    bind a customer to someone else's profile, speed and pool. Transitively: the users of
    a profile held back because its pool is foreign are held back too."""
    foreign = {(c.menu, c.key) for c in changes if c.action is Action.conflict}
    while True:
        held = False
        out = []
        for c in changes:
            if c.action in (Action.add, Action.set) and not c.adopt:
                sent = c.new_values()
                for src, prop, dst in REFERENCES:
                    if src == c.menu and prop in sent and (dst, sent[prop]) in foreign:
                        c = replace(
                            c, action=Action.conflict, needs=(),
                            reason=f"held back: its {NOUN.get(dst, 'object')} "
                            f"'{sent[prop]}' is not provisioner's (see that conflict)",
                        )  # fmt: skip
                        foreign.add((c.menu, c.key))
                        held = True
                        break
            out.append(c)
        changes = out
        if not held:
            return changes


def _with_needs(changes: list[Change]) -> list[Change]:
    """Each add or set that names a pool or profile this plan adds (or renames back) needs
    that change done first: a router that refused the profile would refuse its users too."""
    made = {
        (c.menu, c.key)
        for c in changes
        if c.action is Action.add
        or (c.action is Action.set and any(p.name == "name" for p in c.props))
    }
    out = []
    for c in changes:
        if c.action in (Action.add, Action.set):
            sent = c.new_values()
            needs = tuple(
                (dst, sent[prop])
                for src, prop, dst in REFERENCES
                if src == c.menu and prop in sent and (dst, sent[prop]) in made
            )
            if needs:
                c = replace(c, needs=c.needs + needs)
        out.append(c)
    return out


def _moves_first(
    menu: str,
    rows: list[ObservedObject],
    placed: Mapping[str, str | None],
    desired: list[DesiredObject],
    mine_ids: Mapping[str, str],
) -> list[Change]:
    """Moves of our entries of an ordered list before the first foreign entry (in the
    router's order) that shares a value of ``FIRST_AMONG[menu]`` with ours."""
    prop = FIRST_AMONG[menu]
    ours = set(placed.values()) | set(mine_ids)
    position = {o.id: i for i, o in enumerate(rows)}
    out = []
    for d in desired:
        if d.key not in placed:
            continue  # a conflict: not ours to place
        ros_id = placed[d.key]
        at = len(rows) if ros_id is None else position[ros_id]
        values = [v for v in d.props.get(prop, "").split(",") if v]
        for o in rows[:at]:
            theirs = set(to_text(o.props.get(prop)).split(","))
            shared = [v for v in values if v in theirs]
            if o.id in ours or not shared:
                continue
            where = _key(menu, o)
            out.append(
                Change(
                    menu,
                    d.key,
                    Action.move,
                    ros_id,
                    (PropChange("destination", None, o.id),),
                    reason=f"before {where} ({o.id}), not ours, for {','.join(shared)}: "
                    f"RouterOS asks its {menu} entries in order",
                    needs=((menu, d.key),) if ros_id is None else (),
                )
            )
            break
    return out


# A change of these takes effect at the user's next login only.
RECONNECT_PROPS = {"name", "profile", "remote-address"}


def _session_ends(
    menu: str,
    observed: Mapping[str, list[ObservedObject]],
    ours: Mapping[str, Mapping[str, str]],
    changes: list[Change],
) -> list[Change]:
    """Removes of live sessions whose user (ours) is cut off, removed, or changed in a way
    only a new login picks up. State, not transition: a session a failed sync left up is
    ended by the next one. Sessions of users not ours are never touched."""
    parent, user_prop = SESSIONS[menu]
    by_name: dict[str, list[ObservedObject]] = {}
    for o in observed.get(menu, []):
        by_name.setdefault(to_text(o.props.get(user_prop)), []).append(o)
    if not by_name:  # no live sessions: nothing to end
        return []
    planned = {c.ros_id: c for c in changes if c.menu == parent and c.ros_id}
    out = []
    for user in observed.get(parent, []):
        name = to_text(user.props.get("name"))
        if user.id not in ours.get(parent, {}) or name not in by_name:
            continue
        c = planned.get(user.id)
        needs: tuple[tuple[str, str], ...] = ()
        if c is not None and c.action is Action.remove:
            why = "its user is removed"
        else:
            new = {p.name: p.new for p in c.props} if c is not None else {}
            disabled = essence("disabled", new.get("disabled", user.props.get("disabled")))
            changed = sorted(RECONNECT_PROPS & new.keys())
            if disabled == "true":
                why = "its user is disabled"
            elif changed:
                why = f"new {', '.join(changed)} applies at the next login"
                needs = ((parent, c.key),) if c is not None else ()  # kicked for nothing else
            else:
                why = ""
        if why:
            out += [
                Change(
                    menu, name, Action.remove, o.id, reason=f"ends the session: {why}", needs=needs
                )
                for o in by_name[name]
            ]
    return out


def redact(plan: Plan) -> Plan:
    """The same plan with passwords and secrets masked, for display and storage."""

    def mask(v: str | None) -> str | None:
        return None if v is None else "(sensitive)"

    return Plan(
        target=plan.target,
        kind=plan.kind,
        error=plan.error,
        changes=tuple(
            replace(
                c,
                props=tuple(
                    PropChange(p.name, mask(p.old), mask(p.new)) if _is_secret(c, p.name) else p
                    for p in c.props
                ),
            )
            for c in plan.changes
        ),
    )
