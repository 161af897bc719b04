"""Daemon instances: who is working on what, and taking over the work of dead ones.

Several daemons may share one PostgreSQL. Each has a name (``name()``), a row in
``daemon_instances`` and a heartbeat every ``heartbeat_seconds``. An outbox row being
worked on names the instance that claimed it, a sync run the instance running it. An
instance silent for ``instance_stale_seconds`` is dead: the next drain of any other
instance puts its claims back to ``pending`` and closes its running sync runs as
``interrupted``. An instance that starts under a name with work left over (a restart
after a crash) takes that work back at once.

Taking over never lets two instances sync one router at once: a sync holds its router's
lock (a row lock on PostgreSQL, which the server drops with a dead process's connection;
an instance taken for dead while still alive keeps it, and the new claimant is told
"busy"), and a result of an instance whose claim was taken over is not recorded
(``outbox`` checks the claim is still its own).
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from provisioner.config import Settings
from provisioner.db import reading, transaction
from provisioner.models import (
    DaemonInstance,
    Outbox,
    ReminderMessage,
    SyncRun,
    WebhookDelivery,
    utcnow,
)

log = logging.getLogger(__name__)
HOST = socket.gethostname()
_name = f"{HOST}:{os.getpid()}"  # a process that is not a daemon (CLI, tests)


def name() -> str:
    """This process's instance name: what its claims and sync runs are marked with."""
    return _name


def use_name(instance: str) -> None:
    """Mark this process's work as ``instance``'s (a fleet's sync process)."""
    global _name
    _name = instance


def default_name(settings: Settings, port: int) -> str:
    """``instance_name``, else "<hostname>:<API port>": no two live daemons listen on one
    port of one host, and a restarted daemon gets its old name back."""
    return settings.instance_name or f"{HOST}:{port}"


def start(factory: sessionmaker[Session], instance: str) -> tuple[int, int]:
    """Become ``instance`` and take back what an earlier process of that name left:
    its claims go back to ``pending`` (due now), its running sync runs are closed as
    ``interrupted``. Returns (claims, runs) taken back."""
    global _name
    _name = instance
    now = utcnow()
    with transaction(factory) as s:
        old = s.get(DaemonInstance, instance)
        if old is not None and (old.host, old.pid) != (HOST, os.getpid()):
            log.info(
                "instance %s: taking over from pid %s on %s (last heartbeat %s)",
                instance, old.pid, old.host, old.heartbeat_at.isoformat(),
            )  # fmt: skip
        _beat(s, now, started=True)
        taken = _release(s, [instance], now, f"instance {instance} restarted")
    if any(taken):
        log.warning("instance %s: took back %d outbox claims, %d sync runs", instance, *taken)
    return taken


def beat(factory: sessionmaker[Session]) -> None:
    """Record that this instance is alive (registering it if it is not, or no longer)."""
    with transaction(factory) as s:
        _beat(s, utcnow())


def take_over(factory: sessionmaker[Session], settings: Settings) -> tuple[int, int]:
    """Take over the work of every instance silent for ``instance_stale_seconds``: its
    claims go back to ``pending``, its running sync runs are closed as ``interrupted``,
    and its row is removed. Returns (claims, runs) taken over. Safe to run anywhere."""
    now = utcnow()
    cutoff = now - timedelta(seconds=settings.instance_stale_seconds)
    stale = select(DaemonInstance.name).where(
        DaemonInstance.heartbeat_at < cutoff, DaemonInstance.name != _name
    )
    with reading(factory) as s:  # the usual answer, "none", without taking SQLite's write lock
        if s.scalar(stale.limit(1)) is None:
            return 0, 0
    with transaction(factory) as s:
        dead = list(s.scalars(stale))
        if not dead:
            return 0, 0
        taken = _release(s, dead, now, f"instance {', '.join(dead)} stopped beating")
        s.execute(
            delete(DaemonInstance).where(
                DaemonInstance.name.in_(dead), DaemonInstance.heartbeat_at < cutoff
            )
        )
    log.warning(
        "took over from dead instance(s) %s: %d outbox claims, %d sync runs interrupted",
        ", ".join(dead), *taken,
    )  # fmt: skip
    return taken


def _beat(session: Session, now: datetime, *, started: bool = False) -> None:
    values = {"host": HOST, "pid": os.getpid(), "heartbeat_at": now}
    if started:
        values["started_at"] = now
    res = session.execute(
        update(DaemonInstance).where(DaemonInstance.name == _name).values(**values)
    )
    if res.rowcount == 1:  # type: ignore[attr-defined]
        return
    try:
        with session.begin_nested():
            session.add(DaemonInstance(name=_name, **{"started_at": now, **values}))
    except IntegrityError:  # another process of our name registered first: it is us now
        session.execute(update(DaemonInstance).where(DaemonInstance.name == _name).values(**values))


def _release(session: Session, names: list[str], now: datetime, why: str) -> tuple[int, int]:
    claims = session.execute(
        update(Outbox)
        .where(Outbox.status == "running", Outbox.claimed_by.in_(names))
        .values(status="pending", claimed_by=None, next_attempt_at=now)
    ).rowcount  # type: ignore[attr-defined]
    for table in (WebhookDelivery, ReminderMessage):  # events out: claimed the same way
        claims += session.execute(
            update(table)
            .where(table.status == "running", table.claimed_by.in_(names))
            .values(status="pending", claimed_by=None, next_attempt_at=now)
        ).rowcount  # type: ignore[attr-defined]
    runs = session.execute(
        update(SyncRun)
        .where(SyncRun.status == "running", SyncRun.holder.in_(names))
        .values(status="interrupted", finished_at=now, error=f"interrupted: {why}")
    ).rowcount  # type: ignore[attr-defined]
    return int(claims), int(runs)
