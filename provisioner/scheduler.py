"""APScheduler jobs inside ``provisioner serve``.

Periodic jobs (reconcile, expiry) run once per interval across all instances: each run
first inserts a (job, slot) row, and only the instance whose insert succeeds runs it.
The outbox drain runs on every instance; its rows are claimed atomically, and it takes
over the work of instances whose heartbeat (a job of its own here) went stale.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import IntegrityError

from provisioner import instances, outbox, sync
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.models import JobRun

log = logging.getLogger(__name__)


class _ExpectedSkips(logging.Filter):
    """A drain or sync that outlasts its interval makes APScheduler skip the next run: that
    is the ``max_instances=1`` design, not news, so it is not logged every tick."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


def quiet_logs() -> None:
    """An idle daemon is quiet: APScheduler's per-run INFO lines (two every outbox tick,
    about 86,000 a day) are dropped; its warnings and errors stay."""
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per webhook delivery
    logging.getLogger("apscheduler.scheduler").addFilter(_ExpectedSkips())


def run_once(ctx: Context, job: str, interval: float, fn: Callable[[], object]) -> bool:
    """Run ``fn`` unless another instance already ran ``job`` in this interval's slot."""
    slot = int(time.time() // max(interval, 1.0))
    try:
        with transaction(ctx.factory) as s:
            s.add(JobRun(job=job, slot=slot, holder=instances.name()))
    except IntegrityError:
        return False
    fn()
    return True


def reconcile_parts(interval: float) -> int:
    """Shares the periodic repair is spread over: one every ``interval / parts`` (at most
    12, none shorter than 30 s), so a large fleet never wakes at once."""
    return max(1, min(12, int(interval // 30)))


def share(ids: list[int], tick: int, parts: int) -> list[int]:
    """The routers of this tick: each router falls in one share (by its id), and any
    ``parts`` consecutive ticks cover every router once."""
    return [i for i in ids if i % parts == tick % parts]


def reconcile(ctx: Context, tick: int = 0, parts: int = 1) -> None:
    """Re-check and repair the routers of this tick's share (all of them by default)."""
    ids = share(sync.router_ids(ctx.factory), tick, parts)
    results = sync.sync_many(
        ctx.factory, ctx.settings, ids, trigger="reconcile", keep_plans=False, spread=True
    )
    for r in results:
        if r.status != "ok":
            log.warning("reconcile %s: %s %s", r.router, r.status, r.error or "")


def drain(ctx: Context) -> None:
    counts = outbox.drain(ctx.factory, ctx.settings)
    if any(counts.values()):
        log.info("outbox: %s", counts)


def expire(ctx: Context) -> None:
    from provisioner.activation import expire_due

    n = expire_due(ctx.factory)
    if n:
        log.info("expired %d subscriptions", n)


def repair_sessions(ctx: Context) -> None:
    from provisioner import sweep

    done = sweep.run(ctx.factory, ctx.settings)
    for f in done:
        log.warning("sessions: %s %s (%s): %s", f.action, f.username, f.session_id, f.why)


def bill(ctx: Context) -> None:
    from provisioner import invoices

    r = invoices.run(ctx.factory)
    if r.issued or r.paid or r.suspended:
        log.info("invoices: %d issued, %d paid, %d suspended", r.issued, r.paid, r.suspended)


def throttle(ctx: Context) -> None:
    from provisioner import fup

    n = fup.check(ctx.factory)
    if n:
        log.info("fair usage: %d customers throttled or restored", n)


def warn_expiring(ctx: Context) -> None:
    """customer.expiring ahead of each expiry; balance.low for operators below theirs."""
    from provisioner import events, reminders

    reminders.warn_expiring(ctx.factory, ctx.settings)
    with transaction(ctx.factory) as s:
        events.check_balances(s, ctx.settings.currency)


def prune(ctx: Context) -> None:
    from provisioner import webhooks

    n = webhooks.prune(ctx.factory, ctx.settings)
    if any(n.values()):
        log.info("retention: removed %s", n)


def check_ledger(ctx: Context) -> None:
    """Every account's balance against the sum of its ledger rows, kept for /metrics; a
    disagreement is logged as an error (money the registry cannot account for)."""
    from provisioner import ledger

    with transaction(ctx.factory) as s:
        bad = ledger.check_and_record(s, "scheduler")
    for m in bad[: ledger.SHOWN]:
        log.error("ledger: %s has balance %s but its ledger sums to %s", m.account, m.balance,
                  m.ledger)  # fmt: skip
    if len(bad) > ledger.SHOWN:
        log.error("ledger: %d more accounts disagree (provisioner ledger check)",
                  len(bad) - ledger.SHOWN)  # fmt: skip


def start(ctx: Context) -> BackgroundScheduler:
    s = ctx.settings
    sched = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1})
    parts = reconcile_parts(s.reconcile_interval_seconds)
    # (id, what it does, every, the work, once across instances?)
    jobs: list[tuple[str, str, float, Callable[[], object], bool]] = [
        ("heartbeat", "instance heartbeat", s.heartbeat_seconds,
         lambda: instances.beat(ctx.factory), False),
        ("reconcile", "reconcile routers", s.reconcile_interval_seconds / parts,
         lambda: reconcile(ctx, int(time.time() // (s.reconcile_interval_seconds / parts)),
                           parts), True),
        ("outbox", "drain outbox", s.outbox_interval_seconds, lambda: drain(ctx), False),
        ("expire", "expire subscriptions", s.expiry_interval_seconds, lambda: expire(ctx), True),
        ("fup", "fair usage: throttle and restore", s.fup_interval_seconds,
         lambda: throttle(ctx), True),
        ("sessions", "close stale sessions, cut those without a right",
         float(s.acct_interim_interval_seconds or 300), lambda: repair_sessions(ctx), True),
        ("invoices", "issue, collect and enforce invoices", s.invoice_interval_seconds,
         lambda: bill(ctx), True),
        ("ledger", "prove balances equal their ledger", s.ledger_check_interval_seconds,
         lambda: check_ledger(ctx), True),
        ("expiring", "customer.expiring and balance.low events", s.expiry_interval_seconds,
         lambda: warn_expiring(ctx), True),
        ("retention", "remove events and deliveries past event_retention_days",
         s.retention_interval_seconds, lambda: prune(ctx), True),
    ]  # fmt: skip
    for job, name, every, work, once in jobs:
        fn = (lambda j=job, e=every, w=work: run_once(ctx, j, e, w)) if once else work
        sched.add_job(fn, "interval", seconds=every, id=job, name=name)
    sched.start()
    return sched
