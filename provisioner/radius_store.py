"""The stock FreeRADIUS tables kept in step with the registry.

Registry changes call ``sync_users`` / ``sync_groups`` / ``sync_routers`` inside their
own transaction, so RADIUS never disagrees with the registry after a commit. ``plan`` /
``apply`` repair drift (rows edited by hand), touching only rows this daemon owns:
managed attributes of our users and groups, and ``nas`` rows marked as ours.

The same path as the routers': this module loads (registry rows → ``mapping.radius``,
and the tables' rows), ``planning.radius_diff`` compares (pure), and ``apply`` writes.
The whole tables (``radius diff`` / ``radius sync``) are read by username range, so a
registry of a million customers is planned a range at a time (``user_ranges``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable

from provisioner.db import transaction
from provisioner.mapping.radius import (
    MANAGED,
    NasRow,
    RadiusRow,
    customer_rows,
    expired_group_rows,
    group_rows,
    nas_row,
)
from provisioner.models import Customer, MasterPackage, Router
from provisioner.planning.plan import Action, Change, Plan
from provisioner.planning.radius_diff import (
    USER_TABLES,
    ObservedNas,
    ObservedRow,
    diff_nas,
    diff_rows,
    diff_users,
    radius_plan,
)
from provisioner.radius_tables import (
    nas,
    radcheck,
    radgroupcheck,
    radgroupreply,
    radreply,
    radusergroup,
)
from provisioner.snapshots import CustomerSpec, MappingOptions, MasterSpec
from provisioner.state import customer_specs, master_spec, router_spec

TABLES = {
    "radcheck": (radcheck, "username"),
    "radreply": (radreply, "username"),
    "radgroupcheck": (radgroupcheck, "groupname"),
    "radgroupreply": (radgroupreply, "groupname"),
}
GROUP_TABLES = ("radgroupcheck", "radgroupreply")
CHUNK = 5000  # names per IN list


# ---- desired ---------------------------------------------------------------------------


# Specs the caller holds already (an activation's customer and master): no re-read.
Known = dict[str, tuple[CustomerSpec, MasterSpec | None]]


def _desired_users(
    session: Session, usernames: Iterable[str] | None, opts: MappingOptions,
    known: Known | None = None,
) -> tuple[list[RadiusRow], set[str]]:
    """The users' rows, and the groups known to be ours among the masters loaded."""
    if usernames is not None and known and set(usernames) <= set(known):
        rows: list[RadiusRow] = []
        held = [known[u] for u in dict.fromkeys(usernames)]
        for spec, master in held:
            rows += customer_rows(spec, master, opts)
        ours = {m.profile_name for _, m in held if m is not None}
        return rows, ours | {opts.expired_group}
    if usernames is None:
        specs = customer_specs(session)
    else:
        names = list(usernames)
        specs = []
        for i in range(0, len(names), CHUNK):  # PostgreSQL takes at most 65,535 parameters
            specs += customer_specs(session, Customer.username.in_(names[i : i + CHUNK]))
    # Only the masters these customers use: one activation must not load every package.
    wanted = {s.master_id for s in specs if s.master_id is not None}
    mq = select(MasterPackage)
    if usernames is not None:
        mq = mq.where(MasterPackage.id.in_(wanted))
    masters = {m.id: master_spec(m) for m in session.scalars(mq)} if wanted else {}
    rows = []
    for spec in specs:
        rows += customer_rows(spec, masters.get(spec.master_id) if spec.master_id else None, opts)
    return rows, {m.profile_name for m in masters.values()} | {opts.expired_group}


def _desired_groups(
    session: Session, groups: Iterable[str] | None, opts: MappingOptions
) -> list[RadiusRow]:
    q = select(MasterPackage)
    if groups is not None:
        q = q.where(MasterPackage.profile_name.in_(list(groups)))
    rows: list[RadiusRow] = []
    for m in session.scalars(q):
        rows += group_rows(master_spec(m), opts)
    if groups is None or opts.expired_group in groups:
        rows += expired_group_rows(opts)
    return rows


# ---- observed --------------------------------------------------------------------------


def _observed(session: Session, table: str, owners: list[str]) -> list[ObservedRow]:
    if not owners:
        return []
    out: list[ObservedRow] = []
    # Chunked IN lists: a 100k-user sync must not build one giant statement.
    for i in range(0, len(owners), CHUNK):
        chunk = owners[i : i + CHUNK]
        if table == "radusergroup":
            t = radusergroup
            for r in session.execute(
                select(t.c.id, t.c.username, t.c.groupname, t.c.priority).where(
                    t.c.username.in_(chunk)
                )
            ):
                row = RadiusRow(table, r.username, r.groupname, "", str(r.priority))
                out.append(ObservedRow(r.id, row))
        else:
            t, col = TABLES[table]
            owner = t.c[col]
            for r in session.execute(
                select(t.c.id, owner, t.c.attribute, t.c.op, t.c.value).where(
                    owner.in_(chunk), t.c.attribute.in_(sorted(MANAGED[table]))
                )
            ):
                out.append(ObservedRow(r.id, RadiusRow(table, r[1], r.attribute, r.op, r.value)))
    return out


def _observed_users(session: Session, owners: list[str]) -> list[ObservedRow]:
    """The users' rows of ``radcheck``, ``radreply`` and ``radusergroup`` in one round
    trip per chunk (an activation writes one user: one query, not three)."""
    if len(owners) == 1:
        return observed_user(session, owners[0])
    out: list[ObservedRow] = []
    for i in range(0, len(owners), CHUNK):
        chunk = owners[i : i + CHUNK]
        out += _observed_of(session.execute(_user_rows(lambda u, c=chunk: [u.in_(c)])))
    return out


def _user_rows(where: Callable[[Any], list[Any]]) -> Any:
    """The user tables' rows of the usernames ``where(username column)`` picks, as one
    union: ``radcheck`` and ``radreply`` rows of managed attributes, every
    ``radusergroup`` row (whose groups are ours is decided in planning)."""
    parts = [
        select(
            literal(name).label("tbl"), t.c.id, t.c.username, t.c.attribute, t.c.op, t.c.value,
        ).where(
            *where(t.c.username),
            # One bound value each, not an expanding list: none to render per call.
            t.c.attribute.in_([literal(a) for a in sorted(MANAGED[name])]),
        )
        for name, t in (("radcheck", radcheck), ("radreply", radreply))
    ]  # fmt: skip
    g = radusergroup
    parts.append(
        select(
            literal("radusergroup").label("tbl"), g.c.id, g.c.username,
            g.c.groupname.label("attribute"), literal("").label("op"),
            cast(g.c.priority, String).label("value"),
        ).where(*where(g.c.username))
    )  # fmt: skip
    return union_all(*parts)


def _observed_of(rows: Iterable[Any]) -> list[ObservedRow]:
    """``_user_rows``'s rows as observed rows."""
    return [
        ObservedRow(r.id, RadiusRow(r.tbl, r.username, r.attribute, r.op, r.value)) for r in rows
    ]


# Built once: one user's rows is an activation's hot path (parameter: ``username``).
USER_ROWS = _user_rows(lambda u: [u == bindparam("username")])


def observed_user(conn: Session | Connection, username: str) -> list[ObservedRow]:
    """One user's rows of ``radcheck``, ``radreply`` and ``radusergroup`` (as
    ``_observed_users`` reads them) by one prebuilt statement."""
    return observed_from(conn.execute(USER_ROWS, {"username": username}), username)


def observed_from(rows: Iterable[Any], username: str) -> list[ObservedRow]:
    """``USER_ROWS``'s rows as observed rows of ``username``."""
    return [ObservedRow(r.id, RadiusRow(r.tbl, username, r.attribute, r.op, r.value)) for r in rows]


def _observed_nas(session: Session) -> list[ObservedNas]:
    """Every ``nas`` row: a router's address may be held by a row not ours (a conflict)."""
    return [
        ObservedNas(
            r.id,
            NasRow(
                nasname=r.nasname,
                shortname=str(r.shortname or ""),
                secret=str(r.secret or ""),
                type=str(r.type or ""),
                description=str(r.description or ""),
            ),
        )
        for r in session.execute(select(nas))
    ]


# ---- whole tables, by username range -------------------------------------------------


BATCH = 10_000  # usernames per range of a whole-table diff or sync


def _after(col: Any, lo: str | None, hi: str | None = None) -> list[Any]:
    """``lo < col <= hi`` (an open end where None): one range of usernames."""
    return ([col > lo] if lo is not None else []) + ([col <= hi] if hi is not None else [])


def _range_end(session: Session, lo: str | None, batch: int) -> str | None:
    """Where the range after ``lo`` ends: the smallest of the ``batch``-th username after
    ``lo`` in ``customers``, ``radcheck`` and ``radusergroup``, so that no side holds more
    than ``batch`` users (rows) of one range; None when every side has fewer left (the last
    range). Compared by the database, in its collation, as the ranges are read."""
    parts = []
    for col in (Customer.username, radcheck.c.username, radusergroup.c.username):
        q = select(col.label("u")).where(*_after(col, lo)).order_by(col)
        parts.append(q.limit(1).offset(batch - 1).subquery())
    ends = union_all(*(select(p.c.u) for p in parts)).subquery()
    end: str | None = session.scalar(select(func.min(ends.c.u)))
    return end


def user_ranges(
    session: Session, batch: int | None = BATCH
) -> Iterator[tuple[str | None, str | None]]:
    """The ranges ``(lo, hi]`` of usernames, in order, that cover every username of the
    customers and of the RADIUS user tables (None: open); one range when ``batch`` is None.
    Each bound is read when the range before it is done (a sync commits in between)."""
    lo: str | None = None
    while True:
        hi = None if batch is None else _range_end(session, lo, batch)
        yield lo, hi
        if hi is None:
            return
        lo = hi


def _observed_range(session: Session, lo: str | None, hi: str | None) -> list[ObservedRow]:
    """Every user row of a range (``_user_rows``)."""
    return _observed_of(session.execute(_user_rows(lambda u: _after(u, lo, hi))))


def range_changes(
    session: Session, opts: MappingOptions, lo: str | None, hi: str | None
) -> list[Change]:
    """The user tables' changes for the usernames in ``(lo, hi]``: that range's customers
    against every row of the range, so that rows of ours for a username no longer in the
    registry (a removed customer) are found too (``radius_diff.diff_users``)."""
    specs = customer_specs(session, *_after(Customer.username, lo, hi))
    masters = {m.id: master_spec(m) for m in session.scalars(select(MasterPackage))}
    desired: list[RadiusRow] = []
    for spec in specs:
        master = masters.get(spec.master_id) if spec.master_id is not None else None
        desired += customer_rows(spec, master, opts)
    owned = {m.profile_name for m in masters.values()} | {opts.expired_group}
    users = {s.username for s in specs}
    return diff_users(desired, _observed_range(session, lo, hi), users, owned)


# ---- plan & apply ----------------------------------------------------------------------


def _named_user_changes(
    session: Session, opts: MappingOptions, users: list[str], known: Known | None,
    observed: list[ObservedRow] | None = None,
) -> list[Change]:
    """The changes for these users (every managed row of each, whoever it is);
    ``observed``: their rows, read already by the caller (``USER_ROWS``)."""
    desired, owned_groups = _desired_users(session, users, opts, known)
    if observed is None:
        observed = _observed_users(session, users)
    unknown = {r.row.attribute for r in observed if r.row.table == "radusergroup"} - owned_groups
    if unknown:  # groups of masters not loaded above: ours too if a master names them
        owned_groups |= set(
            session.scalars(
                select(MasterPackage.profile_name).where(
                    MasterPackage.profile_name.in_(sorted(unknown))
                )
            )
        )
    changes: list[Change] = []
    for table in USER_TABLES:
        mine = [r for r in observed if r.row.table == table]
        changes += diff_rows(table, desired, mine, owned_groups)
    return changes


def _shared_changes(
    session: Session,
    opts: MappingOptions,
    groups: Iterable[str] | None,
    hosts: Iterable[str] | None,
    scope_all: bool,
) -> list[Change]:
    """The groups' and the ``nas`` table's changes (all, or the named ones)."""
    changes: list[Change] = []
    if scope_all or groups is not None:
        names = (
            list(groups)
            if groups is not None
            else list(session.scalars(select(MasterPackage.profile_name))) + [opts.expired_group]
        )
        desired = _desired_groups(session, names, opts)
        for table in GROUP_TABLES:
            changes += diff_rows(table, desired, _observed(session, table, names), set())
    if scope_all or hosts is not None:
        host_list = list(hosts) if hosts is not None else None
        q = select(Router)
        if host_list is not None:
            q = q.where(Router.host.in_(host_list))
        desired_nas = [nas_row(router_spec(r)) for r in session.scalars(q)]
        changes += diff_nas(desired_nas, _observed_nas(session), host_list)
    return changes


def plan(
    session: Session,
    opts: MappingOptions,
    *,
    usernames: Iterable[str] | None = None,
    groups: Iterable[str] | None = None,
    hosts: Iterable[str] | None = None,
    scope_all: bool = True,
    known: Known | None = None,
    batch: int | None = BATCH,
    observed: list[ObservedRow] | None = None,
) -> Plan:
    """What differs between the registry and the RADIUS tables (all, or the named owners).

    All users (``scope_all`` without ``usernames``) are read by username range, ``batch``
    usernames at a time (None: one range), so memory follows the batch and the plan, not
    the registry: ``user_ranges`` / ``range_changes``. The plan is the same for any batch.
    """
    changes: list[Change] = []
    if usernames is not None:
        changes += _named_user_changes(session, opts, list(usernames), known, observed)
    elif scope_all:
        for lo, hi in user_ranges(session, batch):
            changes += range_changes(session, opts, lo, hi)
    changes += _shared_changes(session, opts, groups, hosts, scope_all)
    return radius_plan(changes)


# Built once (the pattern for an UPDATE whose SET comes from each call's parameters):
# one activation's few changes should not pay for building statements.
_ROW_TABLES = (nas, radcheck, radreply, radgroupcheck, radgroupreply, radusergroup)
_SET = {t: update(t).where(t.c.id == bindparam("row_id")) for t in _ROW_TABLES}
_REMOVE = {t: delete(t).where(t.c.id == bindparam("row_id")) for t in _ROW_TABLES}


_ADD = {t: insert(t) for t in _ROW_TABLES}


def _group_row(c: Change) -> tuple[dict[str, Any], dict[str, Any]]:
    """A radusergroup change's row (user and group) and values: its priority (a removal
    carries none)."""
    owner, _, group = c.key.partition("|")
    values = c.new_values()
    priority = {"priority": int(values["value"])} if "value" in values else {}
    return {"username": owner, "groupname": group}, priority


def _regrouped(writes: Iterable[Change]) -> dict[int, Change]:
    """A user's group row removed and another added (a package changed, a user cut off or
    back on): the removed row (by the removal's ``id()``) takes the added group instead,
    one UPDATE rather than a DELETE and an INSERT. The rows FreeRADIUS reads are the same."""
    added: dict[str, list[Change]] = {}
    for c in writes:
        if c.menu == "radusergroup" and c.action is Action.add:
            added.setdefault(c.key.partition("|")[0], []).append(c)
    taken: dict[int, Change] = {}
    for c in writes:
        if c.menu == "radusergroup" and c.action is Action.remove and c.ros_id:
            waiting = added.get(c.key.partition("|")[0])
            if waiting:
                taken[id(c)] = waiting.pop(0)
    return taken


def statements(p: Plan) -> Iterator[tuple[Executable, list[dict[str, Any]]]]:
    """The statements that apply a RADIUS plan, each with its parameter sets: changes and
    removals in the plan's order, then the rows to add, one batch per table and shape."""
    adds: dict[Any, list[dict[str, Any]]] = {}
    regrouped = _regrouped(p.writes)
    moved = {id(c) for c in regrouped.values()}
    for c in p.writes:
        values = c.new_values()
        owner, _, attribute = c.key.partition("|")
        if c.menu == "nas":
            t, row = nas, {"nasname": c.key, "ports": None, "server": None, "community": None}
        elif c.menu == "radusergroup":
            t, (row, values) = radusergroup, _group_row(c)
        else:
            t, col = TABLES[c.menu]
            row = {col: owner, "attribute": attribute}
        if c.action is Action.add:
            if id(c) not in moved:
                adds.setdefault(t, []).append({**row, **values})
        elif c.action is Action.set:
            yield _SET[t], [{"row_id": int(c.ros_id or 0), **values}]
        elif id(c) in regrouped:
            new_row, new_values = _group_row(regrouped[id(c)])
            group = {"groupname": new_row["groupname"], **new_values}
            yield _SET[t], [{"row_id": int(c.ros_id or 0), **group}]
        else:
            yield _REMOVE[t], [{"row_id": int(c.ros_id or 0)}]
    for t, rows in adds.items():
        # Rows of one table may differ in their keys (a nas row without a secret):
        # group by key set, so each executemany has one shape.
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            shapes.setdefault(tuple(sorted(row)), []).append(row)
        for same in shapes.values():
            yield _ADD[t], same


def apply(session: Session | Connection, p: Plan) -> int:
    """Apply a RADIUS plan in the caller's transaction; returns the rows written (a bulk
    import adds tens of thousands: one executemany per table)."""
    n = 0
    for stmt, params in statements(p):
        session.execute(stmt, params if len(params) > 1 else params[0])
        n += len(params)
    return n


def sync_users(
    session: Session,
    opts: MappingOptions,
    usernames: Iterable[str],
    *,
    known: Known | None = None,
    later: list[tuple[Any, dict[str, Any]]] | None = None,
    observed: list[ObservedRow] | None = None,
) -> int:
    """Bring these users' rows to what the registry says. ``known``: specs the caller
    holds (not read again); ``later``: the writes are appended there for the caller to
    send with its own (``sale.pay``), instead of now."""
    p = plan(
        session, opts, usernames=list(usernames), scope_all=False, known=known,
        observed=observed,
    )  # fmt: skip
    cut = any(
        c.action is Action.add and c.key.endswith(f"|{opts.expired_group}") for c in p.changes
    )
    if later is not None and not cut:
        later += [(stmt, row) for stmt, rows in statements(p) for row in rows]
        return len(p.changes)
    n = apply(session, p)
    if cut:
        # A user is being cut off: its Reject must be in place (the group is made at
        # start-up and repaired by ``radius sync``; this keeps a hand-deleted one safe).
        # Its rows are the group's alone: planned apart, not with every user again.
        n += sync_groups(session, opts, [opts.expired_group])
    return n


def sync_groups(session: Session, opts: MappingOptions, groups: Iterable[str]) -> int:
    return apply(session, plan(session, opts, groups=list(groups), scope_all=False))


def sync_routers(session: Session, opts: MappingOptions, hosts: Iterable[str]) -> int:
    return apply(session, plan(session, opts, hosts=list(hosts), scope_all=False))


def sync_all(
    factory: sessionmaker[Session],
    opts: MappingOptions,
    *,
    batch: int | None = BATCH,
    after_range: Callable[[str | None], None] | None = None,
) -> tuple[int, dict[str, int]]:
    """``radius sync``: every table brought to the registry; the rows written and the
    plan's counts by action (``Plan.counts``).

    One transaction per step, each committed: the ``nas`` rows and the groups first (a
    group before the users placed in it), then the users a range of ``batch`` usernames
    at a time (``user_ranges``). A million customers' rows are not one transaction (nor
    one plan in memory): a sync stopped halfway leaves every range it finished written
    and each range whole, and running it again converges. Each range is planned in its own
    transaction, so what a concurrent change commits is seen by the ranges after it.
    ``after_range(hi)``: called with each range's end once it is written, before its
    commit (an exception there rolls that range back and ends the sync).
    """
    written = 0
    counts = {a.value: 0 for a in Action}

    def step(p: Plan, s: Session) -> None:
        nonlocal written
        written += apply(s, p)
        for k, v in p.counts().items():
            counts[k] += v

    with transaction(factory) as s:
        step(radius_plan(_shared_changes(s, opts, None, None, True)), s)
    lo: str | None = None
    while True:
        with transaction(factory) as s:
            hi = None if batch is None else _range_end(s, lo, batch)
            step(radius_plan(range_changes(s, opts, lo, hi)), s)
            if after_range is not None:
                after_range(hi)
        if hi is None:
            return written, counts
        lo = hi
