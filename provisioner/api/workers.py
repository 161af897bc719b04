"""How ``serve`` runs the API: uvicorn in this process, or in worker processes that the
parent deals connections to.

Two things uvicorn leaves to chance decide the API's tail latency:

- **Which worker takes a connection.** uvicorn's workers share one listening socket, and
  each accepts every pending connection when it wakes: when 32 keep-alive clients
  connected together, one worker took 31 or 32 of them in 3 runs of 8 (bench.activations)
  and served them from one core while the other idled; accepting one per turn of the
  event loop still left 31/1. Here the parent accepts and hands each connection to the
  worker with the fewest open (``Workers``; Node's cluster module does the same, for the
  same reason), so a burst splits evenly whatever the timing.
- **The garbage collector.** A loaded app is about 175,000 objects that live as long as
  the process; each full collection walked them all, 80–300 ms during which every
  request in that worker waited. ``freeze_heap`` takes them out of the collector's sight
  once the app is built (``gc.freeze``); later collections walk only what came after,
  and the young generation is collected every ``GC_YOUNG`` allocations rather than 700
  (a request's garbage is freed by reference counting; as in ``fleet``): 6–7% more
  activations a second against pgbench in two A/B pairs (``bench/README.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import multiprocessing
import signal
import socket
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn

log = logging.getLogger(__name__)

RESTART_EVERY_S = 1.0  # a worker that keeps dying is restarted at most this often
GC_YOUNG = 20_000  # the collector's first threshold in a serving process (Python's: 700)
_SPAWN = multiprocessing.get_context("spawn")


def freeze_heap() -> None:
    """Collect once, then exclude every object alive now from later collections: call it
    in a serving process once its app is built (objects it keeps for life)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 20, 20)


class DealtServer(uvicorn.Server):
    """uvicorn's server in a worker: its connections arrive over ``channel`` (file
    descriptors from the parent's ``Dealer``), and it counts in ``closed`` those it has
    finished with, so the parent knows how many each worker holds."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket, closed: Any) -> None:
        super().__init__(config)
        self.channel = channel
        self.closed = closed
        self._connecting: set[asyncio.Task[Any]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the app's lifespan; no listener of uvicorn's
        base: Any = self.config.http_protocol_class
        closed = self.closed

        class Counted(base):  # type: ignore[misc, valid-type]
            def connection_lost(self, exc: Exception | None) -> None:
                closed.value += 1
                super().connection_lost(exc)

        self._protocol = lambda: Counted(
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        self.channel.setblocking(False)
        asyncio.get_running_loop().add_reader(self.channel.fileno(), self._take)

    def _take(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            msg, fds, _, _ = socket.recv_fds(self.channel, 1, 16)
        except (BlockingIOError, InterruptedError):
            return
        if not msg:  # the parent closed the channel: it is ending, so are we
            loop.remove_reader(self.channel.fileno())
            self.should_exit = True
        for fd in fds:
            conn = socket.socket(fileno=fd)
            conn.setblocking(False)
            task = loop.create_task(loop.connect_accepted_socket(self._protocol, conn))
            self._connecting.add(task)
            task.add_done_callback(lambda t, c=conn: self._connected(t, c))

    def _connected(self, task: asyncio.Task[Any], conn: socket.socket) -> None:
        self._connecting.discard(task)
        if task.cancelled() or task.exception() is not None:
            why = "cancelled" if task.cancelled() else task.exception()
            log.warning("a connection could not be set up: %s", why)
            conn.close()
            self.closed.value += 1

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        with contextlib.suppress(ValueError, OSError):  # already removed, or closed
            asyncio.get_running_loop().remove_reader(self.channel.fileno())
        await super().shutdown(sockets=sockets)


def _worker(config: uvicorn.Config, channel: socket.socket, closed: Any) -> None:
    """One worker process (spawned): uvicorn's logging, then serving until told to end."""
    config.configure_logging()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches every worker: ending
        DealtServer(config, channel, closed).run(sockets=[])


@dataclass
class _Slot:
    process: BaseProcess
    channel: socket.socket  # the parent's end
    closed: Any  # a shared c_long, written by the worker
    dealt: int = 0  # written by the dealer
    started: float = 0.0

    @property
    def open(self) -> int:
        return self.dealt - self.closed.value


class Workers:
    """``count`` worker processes serving the connections the parent accepts on ``sock``:
    each goes to the live worker holding the fewest. A worker that dies is replaced; all
    end (uvicorn's graceful SIGTERM) when this process is asked to (SIGINT, SIGTERM)."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, count: int) -> None:
        self.config = config
        self.sock = sock
        self.count = count
        self.slots: list[_Slot] = []
        self._lock = threading.Lock()  # slots: the dealer reads them, run() replaces them
        self._stop = threading.Event()

    def _spawn(self) -> _Slot:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        closed = _SPAWN.Value(ctypes.c_long, 0, lock=False)
        proc = _SPAWN.Process(
            target=_worker, args=(self.config, child_end, closed), name="provisioner-api"
        )
        proc.start()
        child_end.close()
        # A worker too far behind to take more descriptors is passed over, not waited for.
        parent_end.setblocking(False)
        return _Slot(proc, parent_end, closed, started=time.monotonic())

    def run(self) -> None:
        previous = {
            sig: signal.signal(sig, lambda *_: self._stop.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.sock.listen(self.config.backlog)
            with self._lock:
                self.slots = [self._spawn() for _ in range(self.count)]
            threading.Thread(target=self._deal, name="api-dealer", daemon=True).start()
            while not self._stop.wait(0.5):
                self._replace_the_dead()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._end_all()

    def _deal(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.1)  # out of descriptors, say: retry rather than spin
                continue
            with conn, self._lock:
                for slot in sorted(self.slots, key=lambda s: s.open):
                    if not slot.process.is_alive():
                        continue
                    try:
                        socket.send_fds(slot.channel, [b"c"], [conn.fileno()])
                    except OSError:
                        continue  # that worker just ended: the next one
                    slot.dealt += 1
                    break
                else:
                    log.error("no API worker is alive to take a connection")

    def _replace_the_dead(self) -> None:
        with self._lock:
            for i, slot in enumerate(self.slots):
                if slot.process.is_alive() or time.monotonic() - slot.started < RESTART_EVERY_S:
                    continue
                log.warning(
                    "API worker %s ended (exit %s); starting another",
                    slot.process.pid, slot.process.exitcode,
                )  # fmt: skip
                slot.channel.close()
                self.slots[i] = self._spawn()

    def _end_all(self, timeout: float = 30.0) -> None:
        self._stop.set()
        with self._lock:
            slots = list(self.slots)
        for slot in slots:
            if slot.process.is_alive():
                slot.process.terminate()
        deadline = time.monotonic() + timeout
        for slot in slots:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.channel.close()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the dealer's accept
        self.sock.close()


def serve(config: uvicorn.Config, sock: socket.socket, workers: int) -> None:
    """Serve ``config``'s app on the bound ``sock``: in this process when ``workers`` is 1,
    else from that many spawned processes (``config.app`` is an import string then)."""
    if workers > 1:
        Workers(config, sock, workers).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])
