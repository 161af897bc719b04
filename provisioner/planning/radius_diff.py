"""desired RADIUS rows vs the rows in the tables → a Plan (pure).

The RADIUS twin of ``planning.diff``: the store loads the registry's rows (through
``mapping.radius``) and the tables' rows, this module compares them, the store applies
the plan. Ownership: the managed attributes of our users and groups (the loader reads
no other rows), a user's ``radusergroup`` rows for groups we own (a group an admin added
by hand is left alone), and ``nas`` rows whose description carries our marker.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from provisioner.mapping.marker import parse_marker
from provisioner.mapping.radius import NasRow, RadiusRow
from provisioner.planning.plan import Action, Change, Plan, PropChange

# The order to write in: clients first, a group before the users placed in it.
ORDER = ["nas", "radgroupcheck", "radgroupreply", "radcheck", "radreply", "radusergroup"]
USER_TABLES = ("radcheck", "radreply", "radusergroup")
NAS_PROPS = ("shortname", "secret", "type", "description")
NAS_CONFLICT = "a nas row not made by provisioner has this address"


@dataclass(frozen=True)
class ObservedRow:
    """A row read from radcheck/radreply/radgroupcheck/radgroupreply/radusergroup."""

    id: int
    row: RadiusRow


@dataclass(frozen=True)
class ObservedNas:
    """A ``nas`` row as read (missing columns read as ``""``)."""

    id: int
    row: NasRow


def is_our_nas(row: NasRow) -> bool:
    """A ``nas`` row this daemon made (its description is a router's marker)."""
    m = parse_marker(row.description)
    return m is not None and m[0] == "router"


def diff_rows(
    table: str,
    desired: Iterable[RadiusRow],
    observed: Iterable[ObservedRow],
    owned_groups: Collection[str] = (),
) -> list[Change]:
    """The changes that make ``table``'s observed rows match the desired ones.

    ``desired`` rows of other tables are ignored; ``observed`` must be rows of ``table``
    for the owners in scope. One row per key is kept (FreeRADIUS would use the first
    only), the rest are removed. For ``radusergroup``, rows naming a group not in
    ``owned_groups`` are not ours and never touched, and only the priority is compared.
    """
    changes: list[Change] = []
    want = {r.key: r for r in desired if r.table == table}
    have: dict[str, list[ObservedRow]] = defaultdict(list)
    for o in observed:
        if table == "radusergroup" and o.row.attribute not in owned_groups:
            continue  # a group an admin added by hand: not ours
        have[o.row.key].append(o)
    for key, row in sorted(want.items()):
        rows = have.pop(key, [])
        if not rows:
            added = (PropChange("op", None, row.op), PropChange("value", None, row.value))
            changes.append(Change(table, key, Action.add, None, added))
            continue
        cur = rows[0].row
        props = tuple(
            PropChange(n, o, w)
            for n, o, w in (("op", cur.op, row.op), ("value", cur.value, row.value))
            if o != w and not (table == "radusergroup" and n == "op")
        )
        if props:
            changes.append(Change(table, key, Action.set, str(rows[0].id), props))
        for extra in rows[1:]:  # duplicates: FreeRADIUS would use the first only
            changes.append(Change(table, key, Action.remove, str(extra.id)))
    for key, left in sorted(have.items()):
        for o in left:
            changes.append(Change(table, key, Action.remove, str(o.id)))
    return changes


def users_in_scope(
    observed: Iterable[ObservedRow], users: Collection[str], owned_groups: Collection[str]
) -> list[ObservedRow]:
    """Of the user rows read for a range of usernames, those of users that are ours.

    Every row of a registry user (``users``: the customers of that range) is in scope, as
    the rows of a named user always are. A username the registry does not have is ours only
    when one of its ``radusergroup`` rows names a group we own: every user this daemon
    writes is placed in one (its master's, or the expired group), so that is what a removed
    customer's leftover rows carry. A username without one is an admin's own (a test
    account, users not yet imported) and none of its rows are returned.
    """
    rows = list(observed)
    leftover = {
        o.row.owner
        for o in rows
        if o.row.table == "radusergroup"
        and o.row.owner not in users
        and o.row.attribute in owned_groups
    }
    return [o for o in rows if o.row.owner in users or o.row.owner in leftover]


def diff_users(
    desired: Iterable[RadiusRow],
    observed: Iterable[ObservedRow],
    users: Collection[str],
    owned_groups: Collection[str],
) -> list[Change]:
    """The changes to the user tables (``USER_TABLES``) for one range of usernames:
    ``desired`` the rows of the range's customers (``users``), ``observed`` every row read
    from those tables for the range (filtered here by ``users_in_scope``; ``radcheck`` and
    ``radreply`` rows of managed attributes only, as for ``diff_rows``)."""
    want = list(desired)
    by_table: dict[str, list[ObservedRow]] = defaultdict(list)
    for o in users_in_scope(observed, users, owned_groups):
        by_table[o.row.table].append(o)
    changes: list[Change] = []
    for table in USER_TABLES:
        changes += diff_rows(table, want, by_table[table], owned_groups)
    return changes


def diff_nas(
    desired: Iterable[NasRow],
    observed: Iterable[ObservedNas],
    hosts: Collection[str] | None = None,
) -> list[Change]:
    """The changes that make the ``nas`` table list the desired routers.

    A row not made by us at an address we want is a conflict, never overwritten. Our
    rows no longer wanted are removed, limited to ``hosts`` when given (a sync of some
    routers does not remove the others').
    """
    changes: list[Change] = []
    want = {d.nasname: d for d in desired}
    for o in observed:
        r = o.row
        ours = is_our_nas(r)
        if r.nasname in want:
            d = want.pop(r.nasname)
            if not ours:
                changes.append(
                    Change("nas", d.nasname, Action.conflict, str(o.id), reason=NAS_CONFLICT)
                )
                continue
            props = tuple(
                PropChange(n, getattr(r, n), str(getattr(d, n)))
                for n in NAS_PROPS
                if getattr(r, n) != str(getattr(d, n))
            )
            if props:
                changes.append(Change("nas", d.nasname, Action.set, str(o.id), props))
        elif ours and (hosts is None or r.nasname in hosts):
            changes.append(Change("nas", r.nasname, Action.remove, str(o.id)))
    for d in want.values():
        props = tuple(PropChange(n, None, str(getattr(d, n))) for n in NAS_PROPS)
        changes.append(Change("nas", d.nasname, Action.add, None, props))
    return changes


def radius_plan(changes: Iterable[Change]) -> Plan:
    """The RADIUS plan of these changes, in the order to apply: by table (``ORDER``),
    adds and sets before removes, then by key."""
    ordered = sorted(changes, key=lambda c: (ORDER.index(c.menu), c.action is Action.remove, c.key))
    return Plan(target="radius", kind="radius", changes=tuple(ordered))
