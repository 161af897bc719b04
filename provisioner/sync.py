"""Make routers follow the registry: read, plan, apply, record.

Per router: one connection, one print per menu, then exactly the writes in its plan.
Routers are synced concurrently with a bound; one slow or dead router becomes a failed
result for that router, never an aborted run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from nas_adapters.base import NasAdapter
from nas_adapters.errors import NasError, TemporaryNasError
from provisioner import events, instances, metrics
from provisioner.adapters import adapter_for
from provisioner.config import Settings
from provisioner.db import reading, transaction
from provisioner.mapping.menus import (
    ADDRESS_LIST,
    IPV6_POOL,
    MANAGED_PROPS,
    NO_COMMENT,
    PPP_AAA,
    RADIUS,
    RADIUS_INCOMING,
    SINGLETONS,
    key_of,
)
from provisioner.mapping.routeros import (
    DesiredObject,
    bootstrap_objects,
    desired_objects,
    menus_to_read,
)
from provisioner.models import NasObject, Router, RouterLock, SyncRun, utcnow
from provisioner.planning.diff import diff, is_marked, redact
from provisioner.planning.normalize import to_text
from provisioner.planning.plan import Action, ObservedObject, Plan
from provisioner.snapshots import RouterSpec
from provisioner.state import all_masters, options, router_customers, router_spec

log = logging.getLogger(__name__)
AdapterFactory = Callable[[Router, Settings], NasAdapter]
_local_locks: dict[int, threading.Lock] = {}
_local_guard = threading.Lock()


@dataclass
class RouterResult:
    router: str
    plan: Plan
    applied: int = 0
    status: str = "ok"  # ok | conflicts | unreachable | failed | busy | dry-run
    error: str | None = None
    applied_changes: list[dict[str, object]] = field(default_factory=list)
    planned: int = -1  # writes in the plan (kept when the plan itself is dropped)

    def __post_init__(self) -> None:
        if self.planned < 0:
            self.planned = len(self.plan.writes)

    def lean(self) -> RouterResult:
        """The same outcome without the plan's writes and the applied changes (both are in
        the router's sync run): what a fleet-wide pass keeps of each router."""
        p = self.plan
        return replace(self, plan=Plan(p.target, p.conflicts, p.error, p.kind), applied_changes=[])


@dataclass(frozen=True)
class Work:
    """Everything needed to plan one router, loaded in one short DB session."""

    router: RouterSpec
    desired: list[DesiredObject]
    menus: list[str]
    where: dict[str, dict[str, str]]
    owned: dict[str, dict[str, str]]


def _owned(session: Session, router_id: int) -> dict[str, dict[str, str]]:
    # Columns through Core, fetched at once (no ORM row machinery): a router's 2,100
    # records are read on every sync.
    out: dict[str, dict[str, str]] = {}
    q = select(NasObject.menu, NasObject.ros_id, NasObject.key).where(
        NasObject.router_id == router_id
    )
    session.flush()  # what session.execute's autoflush would do; Core does not
    for menu, ros_id, key in session.connection().execute(q).fetchall():
        out.setdefault(menu, {})[ros_id] = key
    return out


def load_work(
    session: Session, router: Router, settings: Settings, *, bootstrap: bool = False
) -> Work:
    spec = router_spec(router)
    opts = options(settings)
    owned = _owned(session, router.id)
    if bootstrap:
        desired = bootstrap_objects(
            spec,
            radius_address=settings.radius_server_address,
            auth_port=settings.radius_auth_port,
            acct_port=settings.radius_acct_port,
            timeout=settings.radius_timeout,
            interim=settings.acct_interim_interval_seconds,
        )
        menus = [RADIUS, RADIUS_INCOMING, PPP_AAA]
        where: dict[str, dict[str, str]] = {}
    else:
        masters = all_masters(session)
        customers = router_customers(session, router.id)
        desired = desired_objects(spec, masters, customers, opts, ipv6_owned=IPV6_POOL in owned)
        menus = menus_to_read(spec, opts, masters, owned)
        where = {ADDRESS_LIST: {"list": opts.expired_address_list}} if ADDRESS_LIST in menus else {}
    return Work(spec, desired, menus, where, owned)


def plan_for(work: Work, observed: dict[str, list[ObservedObject]], *, adopt: bool = False) -> Plan:
    return diff(work.router.name, work.desired, observed, work.owned, adopt=adopt, menus=work.menus)


def read_router(adapter: NasAdapter, work: Work) -> dict[str, list[ObservedObject]]:
    return adapter.read({m: MANAGED_PROPS.get(m, []) for m in work.menus}, work.where)


def _claim_marked(session: Session, work: Work, observed: dict[str, list[ObservedObject]]) -> None:
    """Record objects carrying our marker, forget records of objects gone from the router."""
    rid = work.router.id
    for menu, rows in observed.items():
        if menu in SINGLETONS:  # one row, no .id: nothing to own
            continue
        ids = {o.id for o in rows}
        known = work.owned.get(menu, {})
        gone = [i for i in known if i not in ids]
        if gone:
            session.execute(
                delete(NasObject).where(
                    NasObject.router_id == rid, NasObject.menu == menu, NasObject.ros_id.in_(gone)
                )
            )
        if menu in NO_COMMENT:
            continue
        for o in rows:
            if o.id not in known and is_marked(o):
                key = key_of(menu, {k: to_text(v) for k, v in o.props.items()})
                session.add(NasObject(router_id=rid, menu=menu, ros_id=o.id, key=key))


def _lock(
    factory: sessionmaker[Session], router_id: int
) -> tuple[Session | None, threading.Lock | None]:
    """One syncer per router: a row lock on PostgreSQL (across instances), else in-process."""
    with _local_guard:
        local = _local_locks.setdefault(router_id, threading.Lock())
    if not local.acquire(blocking=False):
        return None, None
    session = factory()
    if session.get_bind().dialect.name != "postgresql":
        session.close()
        return None, local
    try:
        with session.begin():
            if session.get(RouterLock, router_id) is None:
                session.add(RouterLock(router_id=router_id, holder=""))
    except IntegrityError:
        pass  # another instance created the row first; locking it below is what matters
    try:
        row = session.execute(
            select(RouterLock)
            .where(RouterLock.router_id == router_id)
            .with_for_update(skip_locked=True)
        ).scalar_one_or_none()
    except OperationalError:
        row = None
    if row is None:
        session.rollback()
        session.close()
        local.release()
        return None, None
    row.holder, row.locked_at = instances.name(), utcnow()
    session.flush()
    return session, local


def sync_router(
    factory: sessionmaker[Session],
    settings: Settings,
    router_id: int,
    *,
    dry_run: bool = False,
    adopt: bool = False,
    bootstrap: bool = False,
    trigger: str = "manual",
    adapter_factory: AdapterFactory = adapter_for,
) -> RouterResult:
    """Plan (and unless ``dry_run``, apply) one router. Never raises for NAS failures.

    An applied (not dry) sync is counted in ``metrics``: its outcome, its time, and each
    applied change by menu under this ``trigger``."""
    r, seconds = timed_sync(
        factory, settings, router_id, dry_run=dry_run, adopt=adopt, bootstrap=bootstrap,
        trigger=trigger, adapter_factory=adapter_factory,
    )  # fmt: skip
    if not dry_run:
        metrics.record_sync(r.router, r.status, trigger, changed_menus(r), seconds)
    return r


def changed_menus(r: RouterResult) -> list[str]:
    """The menu of each change applied: what ``metrics.record_sync`` counts."""
    return [str(c["menu"]) for c in r.applied_changes]


def timed_sync(
    factory: sessionmaker[Session],
    settings: Settings,
    router_id: int,
    *,
    dry_run: bool = False,
    adopt: bool = False,
    bootstrap: bool = False,
    trigger: str = "manual",
    adapter_factory: AdapterFactory = adapter_for,
) -> tuple[RouterResult, float | None]:
    """``sync_router`` without counting it: its result and its time (None when busy)."""
    started = time.perf_counter()
    with _slots(factory):
        r = _sync_router(
            factory, settings, router_id, dry_run=dry_run, adopt=adopt, bootstrap=bootstrap,
            trigger=trigger, adapter_factory=adapter_factory,
        )  # fmt: skip
    return r, (None if r.status == "busy" else time.perf_counter() - started)


def guarded_sync(
    factory: sessionmaker[Session], settings: Settings, router_id: int, **kw: Any
) -> tuple[RouterResult, float | None]:
    """``timed_sync`` where a bug becomes a failed result for that router, never a raise."""
    try:
        return timed_sync(factory, settings, router_id, **kw)
    except Exception as exc:  # noqa: BLE001 - one router's bug must not abort the others
        log.exception("sync of router %s failed", router_id)
        return failed(router_id, str(exc)), None


def failed(router_id: int, error: str) -> RouterResult:
    name = str(router_id)
    return RouterResult(name, Plan(name, error=error), status="failed", error=error)


def limit_syncs(factory: sessionmaker[Session], n: int) -> None:
    """Run at most ``n`` syncs at once on ``factory``'s engine (a fleet's process, whose
    pool is sized for exactly that)."""
    with _SLOTS_LOCK:
        _SLOTS[id(factory.kw["bind"])] = threading.BoundedSemaphore(n)


_SLOTS: dict[int, threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


def _slots(factory: sessionmaker[Session]) -> threading.BoundedSemaphore:
    """Syncs at once in this process, whoever starts them (the scheduler's reconcile, the
    outbox, the API): each holds up to two of the process's database connections (its
    router lock's and one transaction at a time), so more syncs than the pool can serve
    would each hold one and wait for a second, all of them, until the pool's timeout.
    Two connections are kept for everything else."""
    engine = factory.kw["bind"]
    with _SLOTS_LOCK:
        found = _SLOTS.get(id(engine))
        if found is None:
            pool = engine.pool
            capacity = int(getattr(pool, "size", lambda: 0)()) + int(
                getattr(pool, "_max_overflow", 0)
            )
            n = max(1, (capacity - 2) // 2) if capacity > 0 else 64
            found = _SLOTS[id(engine)] = threading.BoundedSemaphore(n)
        return found


def _sync_router(
    factory: sessionmaker[Session],
    settings: Settings,
    router_id: int,
    *,
    dry_run: bool = False,
    adopt: bool = False,
    bootstrap: bool = False,
    trigger: str = "manual",
    adapter_factory: AdapterFactory = adapter_for,
) -> RouterResult:
    with reading(factory) as s:
        router = s.get(Router, router_id)
        if router is None:
            raise LookupError(f"router {router_id} is gone")
        work = load_work(s, router, settings, bootstrap=bootstrap)
        adapter = adapter_factory(router, settings)
    name = work.router.name
    lock_session: Session | None = None
    local: threading.Lock | None = None
    if not dry_run:
        lock_session, local = _lock(factory, router_id)
        if local is None:
            return RouterResult(
                name, Plan(name), status="busy", error="another sync of this router is running"
            )
    run_id: int | None = None
    try:
        try:
            observed = read_router(adapter, work)
        except NasError as exc:
            plan = Plan(name, error=str(exc))
            status = "unreachable" if isinstance(exc, TemporaryNasError) else "failed"
            if not dry_run:
                _record_run(factory, router_id, trigger, plan, 0, status, str(exc), [])
            return RouterResult(name, plan, status=status, error=str(exc))
        plan = plan_for(work, observed, adopt=adopt)
        if dry_run:
            return RouterResult(name, plan, status="dry-run")
        with transaction(factory) as s:
            if lock_session is not None:
                _close_orphans(s, router_id)
            _claim_marked(s, work, observed)
            run = SyncRun(
                router_id=router_id,
                trigger=trigger,
                changes_planned=len(plan.writes),
                holder=instances.name(),
            )
            s.add(run)
            s.flush()
            run_id = run.id
        return _apply(factory, adapter, work, plan, run_id)
    finally:
        adapter.close()
        if lock_session is not None:
            lock_session.rollback()
            lock_session.close()
        if local is not None:
            local.release()


def _close_orphans(session: Session, router_id: int) -> None:
    """Close the router's runs still marked ``running``: we hold its lock (PostgreSQL,
    across instances), so whoever started them died before finishing."""
    session.execute(
        update(SyncRun)
        .where(SyncRun.router_id == router_id, SyncRun.status == "running")
        .values(
            status="interrupted",
            finished_at=utcnow(),
            error="interrupted: the process running it stopped before it finished",
        )
    )


def _listed(items: list[str]) -> str:
    more = f"; and {len(items) - 5} more" if len(items) > 5 else ""
    return "; ".join(items[:5]) + more


def _apply(
    factory: sessionmaker[Session], adapter: NasAdapter, work: Work, plan: Plan, run_id: int
) -> RouterResult:
    result = RouterResult(work.router.name, plan)
    rid = work.router.id
    made: list[dict[str, object]] = []  # ownership records to add
    gone: dict[str, list[str]] = {}  # menu -> .ids removed, records to drop
    redacted = dict(zip(plan.changes, redact(plan).changes, strict=True))

    def flush() -> None:
        # Set-based, a batch at a time: a crash before a flush loses nothing, the next
        # sync finds what we added by its marker.
        if not made and not gone:
            return
        with transaction(factory) as s:
            for menu, ids in gone.items():
                s.execute(
                    delete(NasObject).where(
                        NasObject.router_id == rid,
                        NasObject.menu == menu,
                        NasObject.ros_id.in_(ids),
                    )
                )
            if made:
                s.execute(insert(NasObject), made)
        made.clear()
        gone.clear()

    refused: list[str] = []
    skipped: list[str] = []
    try:
        # The adapter sends in bursts and holds back what relies on a change not done.
        for done in adapter.apply(plan.writes):
            c = done.change
            if done.held_back:
                skipped.append(f"{work.router.name} {c.menu} {c.key}: {done.error}")
                continue
            if done.error is not None:
                refused.append(done.error)
                continue
            if done.ros_id and (c.action is Action.add or (c.action is Action.set and c.adopt)):
                made.append({"router_id": rid, "menu": c.menu, "ros_id": done.ros_id, "key": c.key})
            elif c.action is Action.remove and done.ros_id:
                gone.setdefault(c.menu, []).append(done.ros_id)
            result.applied += 1
            result.applied_changes.append(redacted[c].to_dict())
            if len(made) + sum(map(len, gone.values())) >= 1000:
                flush()
    except NasError as exc:
        result.status = "unreachable" if isinstance(exc, TemporaryNasError) else "failed"
        result.error = str(exc)
    finally:
        if refused or skipped:
            # The router refused these objects (and what relied on them was not sent);
            # every other change was still applied.
            if result.status == "ok":
                result.status = "failed"
            parts, n = [], len(plan.writes)
            if refused:
                parts.append(f"{len(refused)} of {n} changes refused: {_listed(refused)}")
            if skipped:
                parts.append(f"{len(skipped)} skipped: {_listed(skipped)}")
            text = "; ".join(parts)
            result.error = f"{result.error}; {text}" if result.error else text
        if plan.conflicts and result.status == "ok":
            # Applied all it could; what it could not is the admin's to settle.
            result.status = "conflicts"
            left = [f"{c.menu} {c.key}: {c.reason}" for c in plan.conflicts]
            result.error = f"{len(left)} conflicts left unsynced: {_listed(left)}"
        flush()
        with transaction(factory) as s:
            run = s.get(SyncRun, run_id)
            assert run is not None
            run.finished_at = utcnow()
            run.changes_applied = result.applied
            run.status = result.status
            run.error = result.error
            run.applied = result.applied_changes
            _run_event(s, run, work.router.name)
    return result


def _record_run(
    factory: sessionmaker[Session],
    router_id: int,
    trigger: str,
    plan: Plan,
    applied: int,
    status: str,
    error: str | None,
    changes: list[dict[str, object]],
) -> None:
    with transaction(factory) as s:
        run = SyncRun(
            router_id=router_id,
            trigger=trigger,
            finished_at=utcnow(),
            status=status,
            error=error,
            changes_planned=len(plan.writes),
            changes_applied=applied,
            applied=changes,
            holder=instances.name(),
        )
        s.add(run)
        s.flush()
        _run_event(s, run, plan.target)


def _run_event(session: Session, run: SyncRun, router: str) -> None:
    """A finished run's event, in its transaction: a failure, or a reconcile that put
    back what was changed on the router by hand."""
    body = {
        "router": router, "router_id": run.router_id, "sync_run_id": run.id,
        "trigger": run.trigger, "status": run.status, "error": run.error,
        "changes_applied": run.changes_applied,
    }  # fmt: skip
    if run.status in ("unreachable", "failed"):
        events.emit(session, "router.sync_failed", body)
    elif run.trigger == "reconcile" and run.changes_applied:
        events.emit(session, "router.drift_repaired", body)


def router_ids(factory: sessionmaker[Session], names: Sequence[str] = ()) -> list[int]:
    """Ids of the named routers (all enabled ones when none are named)."""
    from provisioner.refs import get_by_name

    with reading(factory) as s:
        if names:
            return [get_by_name(s, Router, n).id for n in names]
        return list(
            s.scalars(select(Router.id).where(Router.enabled.is_(True)).order_by(Router.name))
        )


def sync_many(
    factory: sessionmaker[Session],
    settings: Settings,
    ids: Iterable[int],
    *,
    dry_run: bool = False,
    adopt: bool = False,
    bootstrap: bool = False,
    trigger: str = "manual",
    adapter_factory: AdapterFactory = adapter_for,
    on_done: Callable[[RouterResult], None] | None = None,
    keep_plans: bool = True,
    spread: bool = False,
) -> list[RouterResult]:
    """Sync routers concurrently (``settings.sync_concurrency`` at once), results in input order.

    ``keep_plans=False`` keeps each router's result ``lean`` once it is done (after
    ``on_done``): a fleet's plans are not all held at once, only those in progress.
    ``spread``: a fleet-wide apply on PostgreSQL runs in ``fleet.processes`` processes
    (one per core by default), each syncing a share with its own connections; its
    results are always lean, its metrics counted here (``provisioner.fleet``)."""
    ids = list(ids)
    if spread and not dry_run and adapter_factory is adapter_for:
        from provisioner import fleet

        if fleet.spreads(factory, settings, len(ids)):
            return fleet.sync_spread(
                factory, settings, ids, adopt=adopt, bootstrap=bootstrap, trigger=trigger,
                on_done=on_done,
            )  # fmt: skip

    def one(rid: int) -> RouterResult:
        r, seconds = guarded_sync(
            factory, settings, rid, dry_run=dry_run, adopt=adopt, bootstrap=bootstrap,
            trigger=trigger, adapter_factory=adapter_factory,
        )  # fmt: skip
        if not dry_run:
            metrics.record_sync(r.router, r.status, trigger, changed_menus(r), seconds)
        if on_done:
            on_done(r)
        return r if keep_plans else r.lean()

    if len(ids) <= 1:
        return [one(i) for i in ids]
    with ThreadPoolExecutor(max_workers=max(1, min(settings.sync_concurrency, len(ids)))) as pool:
        return list(pool.map(one, ids))


__all__ = ["RouterResult", "router_ids", "sync_many", "sync_router"]
