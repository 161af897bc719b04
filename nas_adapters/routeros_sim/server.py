"""The simulator's TCP side: accept API connections, log in, dispatch, inject faults.

One asyncio event loop in one daemon thread serves a router, or every router of a
`SimulatedFleet`, so 200 routers cost one thread, not hundreds. Each command runs when it
arrives; its reply is built in memory and leaves `latency` later (replies due together
go in one `write`). Router state lives in
`menus.RouterState`; this module only frames it and decides when (or whether) to answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import socket
import ssl
import threading
from collections import deque
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from .menus import Reply, RouterState, Trap, split_command
from .nas import SimulatedNas
from .wire import SentenceDecoder, WireError, encode_word

__all__ = ["SimStats", "SimulatedFleet", "SimulatedRouter"]

T = TypeVar("T")

WRITE_VERBS = frozenset({"add", "set", "remove", "unset", "enable", "disable", "move"})
BAD_LOGIN = "invalid user name or password (6)"
_END = b"\x00"
_RE, _DONE, _TRAP, _EMPTY, _FATAL = (
    encode_word(w) for w in ("!re", "!done", "!trap", "!empty", "!fatal")
)


@dataclass
class SimStats:
    """Counters since start or the last `reset_stats()`.

    `commands` counts every sentence answered (login included); `reads` are `print`s and
    `writes` are add/set/remove/unset/enable/disable/move attempts, trapped or not; `traps`
    counts `!trap` sentences sent; `peak_connections` is the most connections open at
    once (two syncs of one router at the same time show as 2); `peak_in_flight` the most
    commands of one connection run and waiting for their reply to leave (more than 1:
    the client pipelines). `write_log` lists (menu, verb, name or .id) of every write in
    arrival order while the router's `record_writes` is on.
    """

    connections: int = 0
    peak_connections: int = 0
    logins: int = 0
    commands: int = 0
    reads: int = 0
    writes: int = 0
    writes_by_menu: dict[str, int] = field(default_factory=dict)
    reads_by_menu: dict[str, int] = field(default_factory=dict)
    traps: int = 0
    peak_in_flight: int = 0
    write_log: list[tuple[str, str, str]] = field(default_factory=list)

    def _zero(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict | list):
                value.clear()
            else:
                setattr(self, f.name, 0)


class _LoopThread:
    """An asyncio loop running in a daemon thread; other threads submit coroutines."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T | None:
        """Run `coro` on the loop and wait for it (or just schedule it from the loop)."""
        if self.in_loop():
            self.loop.create_task(coro)
            return None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def cancel_rest() -> None:
            me = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not me]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.call(cancel_rest(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


@dataclass
class _Session:
    logged_in: bool = False
    challenge: bytes | None = None


class SimulatedRouter:
    """A RouterOS API endpoint with in-memory menus, for tests and benchmarks.

    Speaks the plain API (no TLS) exactly as REFERENCE.md §1 describes, so librouteros
    talks to it as to a router. State is reachable directly (`items`, `add_item`, ...) for
    test setup and assertions; those methods are thread-safe. Fault switches (`latency`,
    `drop_after`, `trap_rate`, `refuse`, `dead`) may be flipped at any time:

    - `latency`: the round trip: each reply leaves this long after its command
      arrived, so pipelined commands overlap as on a network.
    - `drop_after`: answer this many more commands, then close abruptly on the next.
    - `trap_rate`: chance that a write traps `failure: simulated fault` (category 4)
      instead of running; drawn from `random` (seeded with `seed`).
    - `trap_names`: writes whose `name` is one of these trap the same way, every time
      (one object the router refuses, the others fine).
    - `refuse`: stop listening (ECONNREFUSED) and drop open connections; False listens
      again on the same port.
    - `dead`: accept connections, never answer.

    `send_empty` (default True) makes an empty `print` answer `!empty` before `!done`,
    as RouterOS 7.18+ does; set it False to mimic older versions.
    """

    def __init__(
        self,
        *,
        username: str = "admin",
        password: str = "",
        identity: str = "MikroTik",
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.username = username
        # API-SSL (RouterOS's 8729): the same protocol inside TLS.
        self.ssl_context = ssl_context
        self.password = password
        self.host = host
        self.port = port
        self.stats = SimStats()
        self.random = random.Random(seed)
        # Fault switches.
        self.latency: float = 0.0
        self.trap_rate: float = 0.0
        self.trap_names: set[str] = set()
        self.dead: bool = False
        self.record_writes: bool = False
        # RouterOS 7.18+ answers an empty print with `!empty` before `!done`.
        self.send_empty: bool = True
        self._drop_after: int | None = None
        self._refuse = False
        self._lock = threading.Lock()
        self._state = RouterState(identity)
        self._loop: _LoopThread | None = None
        self._owns_loop = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._open = 0
        self._nas: SimulatedNas | None = None
        self._stopped = False  # after stop(), reading `nas` must not start its thread again

    def __repr__(self) -> str:
        return f"<SimulatedRouter {self.host}:{self.port}>"

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> SimulatedRouter:
        """Bind and serve in a background thread; `port` is the bound port afterwards."""
        self._stopped = False
        if self._nas is not None:
            self._nas.start()
        if self._loop is None:
            loop = _LoopThread(f"routeros-sim-{self.port}")
            try:
                self._start_on(loop, owns=True)
            except BaseException:  # e.g. the port is taken: leave no thread behind
                self._loop = None
                loop.stop()
                raise
        return self

    def stop(self) -> None:
        """Close the listener and every client connection, and stop the RADIUS side's
        thread (`nas`). Idempotent."""
        self._stopped = True
        if self._nas is not None:
            self._nas.stop()
        loop, self._loop = self._loop, None
        if loop is None:
            return
        with contextlib.suppress(Exception):
            loop.call(self._shutdown(), timeout=5)
        if self._owns_loop:
            loop.stop()

    def __enter__(self) -> SimulatedRouter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_on(self, loop: _LoopThread, owns: bool = False) -> None:
        self._loop, self._owns_loop = loop, owns
        loop.call(self._listen())
        if self._refuse:
            loop.call(self._unlisten())

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._serve,
            self.host,
            self.port,
            reuse_address=True,
            backlog=256,
            ssl=self.ssl_context,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()

    async def _shutdown(self) -> None:
        await self._unlisten()
        for task in list(self._tasks):
            task.cancel()

    @property
    def nas(self) -> SimulatedNas:
        """The router's RADIUS side (subscriber logins, accounting, CoA/Disconnect),
        made and started on first use; `stop()` stops it with the router (and it stays
        readable, not restarted, until the next `start()`)."""
        with self._lock:
            if self._nas is None:
                self._nas = SimulatedNas(self)
            nas = self._nas
        return nas if self._stopped else nas.start()

    # -- fault switches needing the loop --------------------------------------------

    @property
    def refuse(self) -> bool:
        """True: not listening (connect gets ECONNREFUSED) and open connections dropped.
        Setting it back to False listens again on the same port."""
        return self._refuse

    @refuse.setter
    def refuse(self, value: bool) -> None:
        value = bool(value)
        if value == self._refuse:
            return
        self._refuse = value
        if self._loop is not None:
            self._loop.call(self._unlisten() if value else self._listen())

    @property
    def drop_after(self) -> int | None:
        """Commands still answered before the next one is met with an abrupt close;
        None when off. Resets to None once it fires."""
        return self._drop_after

    @drop_after.setter
    def drop_after(self, value: int | None) -> None:
        with self._lock:
            self._drop_after = value

    # -- state access for tests -----------------------------------------------------

    def items(self, menu: str) -> list[dict[str, str]]:
        """Rows of `menu` (e.g. "/ppp/profile") as `print` returns them."""
        with self._lock:
            return self._state.items(menu)

    def add_item(self, menu: str, **props: object) -> str:
        """Add an item with API validation (read-only props allowed); returns `.id`.
        Keyword names use "_" for "-". Raises `Trap` where the API would trap."""
        with self._lock:
            return self._state.add(menu, _props(props), api=False)

    def set_item(self, menu: str, id_: str, **props: object) -> None:
        """Change an item (any `id_` for singleton menus). Raises `Trap` like the API."""
        with self._lock:
            self._state.set(menu, {".id": id_, **_props(props)}, api=False)

    def remove_item(self, menu: str, id_: str) -> None:
        """Remove an item (built-ins excepted). Raises `Trap` like the API."""
        with self._lock:
            self._state.remove(menu, id_, api=False)

    def move_item(self, menu: str, id_: str, destination: str | None = None) -> None:
        """Move an item of an ordered menu (`/radius`, `/queue/simple`) just before
        `destination`, or to the end. Raises `Trap` like the API."""
        with self._lock:
            self._state.move(menu, id_, destination)

    def reset_stats(self) -> None:
        """Zero every counter in place (references to `stats` stay valid)."""
        with self._lock:
            self.stats._zero()
            self.stats.peak_connections = self._open

    # -- serving --------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock: socket.socket | None = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        with self._lock:
            self.stats.connections += 1
            self._open += 1
            self.stats.peak_connections = max(self.stats.peak_connections, self._open)
        session = _Session()
        decoder = SentenceDecoder()
        # Replies wait here for their time to leave: (due, bytes, then) with `then` one of
        # "", "close" (after /quit) or "abort" (drop_after fired). Commands keep being read
        # while earlier replies wait, so a pipelined burst overlaps its round trips.
        outbox: deque[tuple[float, bytes, str]] = deque()
        wake = asyncio.Event()
        sender = asyncio.create_task(self._send(writer, outbox, wake))
        loop = asyncio.get_running_loop()
        try:
            ending = False
            while not ending and (data := await reader.read(65536)):
                arrived = loop.time()
                for words in decoder.feed(data):
                    if not words or self.dead:
                        continue  # RouterOS ignores empty sentences; a dead router everything
                    answer = self._answer(session, words)
                    if answer is None:  # drop_after fired: what was answered still leaves
                        outbox.append((arrived + self.latency, b"", "abort"))
                        ending = True
                        break
                    reply, close = answer
                    outbox.append((arrived + self.latency, reply, "close" if close else ""))
                    if len(outbox) > self.stats.peak_in_flight:
                        self.stats.peak_in_flight = len(outbox)
                    if close:
                        ending = True
                        break
                wake.set()
                if sender.done():
                    break
            if ending:
                await sender
        except (ConnectionError, WireError):
            writer.transport.abort()
        except asyncio.CancelledError:
            # Shutdown. Ending normally keeps asyncio's stream callback from logging the
            # cancellation as an error; nothing awaits this task's result.
            writer.transport.abort()
        finally:
            if not sender.done():
                sender.cancel()
                with contextlib.suppress(BaseException):
                    await sender
            with self._lock:
                self._open -= 1
            self._writers.discard(writer)
            self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter, outbox: deque[tuple[float, bytes, str]], wake: asyncio.Event
    ) -> None:
        """Write each reply once its time has come (its command's arrival + `latency`),
        in order, several at once when several are due: the network's round trip, not a
        pause between commands."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not outbox:
                    wake.clear()
                    await wake.wait()
                    continue
                wait = outbox[0][0] - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                chunks: list[bytes] = []
                then = ""
                now = loop.time()
                while outbox and outbox[0][0] <= now and not then:
                    _, data, then = outbox.popleft()
                    chunks.append(data)
                writer.write(b"".join(chunks))
                if then == "abort":
                    writer.transport.abort()
                    return
                await writer.drain()
                if then == "close":
                    writer.close()
                    return
        except ConnectionError:
            writer.transport.abort()

    def _answer(self, session: _Session, words: list[str]) -> tuple[bytes, bool] | None:
        """The encoded reply to one sentence and whether to close afterwards;
        None to drop the connection without answering."""
        command, attrs, queries, tag = _split(words)
        with self._lock:
            if self._drop_after is not None:
                if self._drop_after <= 0:
                    self._drop_after = None
                    return None
                self._drop_after -= 1
            self.stats.commands += 1
            if command == "/login":
                return self._login(session, attrs, tag), False
            if command == "/quit":
                return _fatal("session terminated on request"), True
            if not session.logged_in:
                return _fatal("not logged in"), True
            if command == "/cancel":
                return _done(None, tag), False
            try:
                path, verb = split_command(command)
                self._count(path, verb)
                if self.record_writes and verb in WRITE_VERBS:
                    what = attrs.get("name") or attrs.get(".id") or attrs.get("numbers", "")
                    self.stats.write_log.append((path, verb, what))
                if verb in WRITE_VERBS and (
                    attrs.get("name") in self.trap_names
                    or (self.trap_rate > 0 and self.random.random() < self.trap_rate)
                ):
                    raise Trap("failure: simulated fault", 4)
                reply = self._state.run(path, verb, attrs, queries)
            except Trap as trap:
                self.stats.traps += 1
                return _trap(trap, tag), False
        return self._encode(reply, verb, tag), False

    def _count(self, path: str, verb: str) -> None:
        stats = self.stats
        if verb == "print":
            stats.reads += 1
            stats.reads_by_menu[path] = stats.reads_by_menu.get(path, 0) + 1
        elif verb in WRITE_VERBS:
            stats.writes += 1
            stats.writes_by_menu[path] = stats.writes_by_menu.get(path, 0) + 1

    def _login(self, session: _Session, attrs: Mapping[str, str], tag: str | None) -> bytes:
        if "name" not in attrs:
            # Pre-6.43 challenge login: still answered so `login_method=token` works.
            session.challenge = os.urandom(16)
            return _done(session.challenge.hex(), tag)
        if "response" in attrs and session.challenge is not None:
            digest = hashlib.md5(
                b"\x00" + self.password.encode() + session.challenge, usedforsecurity=False
            ).hexdigest()
            ok = attrs["response"] == "00" + digest
        else:
            ok = attrs.get("password", "") == self.password
        if ok and attrs["name"] == self.username:
            session.logged_in = True
            self.stats.logins += 1
            return _done(None, tag)
        self.stats.traps += 1
        return _trap(Trap(BAD_LOGIN), tag)

    def _encode(self, reply: Reply, verb: str, tag: str | None) -> bytes:
        tag_word = encode_word(f".tag={tag}") if tag is not None else b""
        parts: list[bytes] = []
        for row in reply.rows:
            parts.append(_RE)
            parts.extend([encode_word(f"={k}={v}") for k, v in row.items()])
            parts.append(tag_word)
            parts.append(_END)
        if verb == "print" and not reply.rows and reply.ret is None and self.send_empty:
            parts += (_EMPTY, tag_word, _END)
        parts.append(_done(reply.ret, tag))
        return b"".join(parts)


def _split(words: list[str]) -> tuple[str, dict[str, str], list[str], str | None]:
    """Command word, attribute words (`=k=v`), query words (`?…`), and `.tag`."""
    attrs: dict[str, str] = {}
    queries: list[str] = []
    tag: str | None = None
    for word in words[1:]:
        if word.startswith("="):
            key, _, value = word[1:].partition("=")
            attrs[key] = value
        elif word.startswith("?"):
            queries.append(word)
        elif word.startswith(".tag="):
            tag = word[5:]
    return words[0], attrs, queries, tag


def _done(ret: str | None, tag: str | None) -> bytes:
    parts = [_DONE]
    if ret is not None:
        parts.append(encode_word(f"=ret={ret}"))
    if tag is not None:
        parts.append(encode_word(f".tag={tag}"))
    parts.append(_END)
    return b"".join(parts)


def _trap(trap: Trap, tag: str | None) -> bytes:
    # Only `=category=` and `=message=`: librouteros builds TrapError(**words).
    parts = [_TRAP]
    if trap.category is not None:
        parts.append(encode_word(f"=category={trap.category}"))
    parts.append(encode_word(f"=message={trap.message}"))
    if tag is not None:
        parts.append(encode_word(f".tag={tag}"))
    parts.append(_END)
    return b"".join(parts) + _done(None, tag)


def _fatal(reason: str) -> bytes:
    return _FATAL + encode_word(reason) + _END


def _props(props: Mapping[str, object]) -> dict[str, str]:
    def text(value: object) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    return {key.replace("_", "-"): text(value) for key, value in props.items()}


class SimulatedFleet:
    """Many simulated routers on one event-loop thread (e.g. 200 for a benchmark).

    Each router gets its own port; `router_kwargs` go to every `SimulatedRouter` (leave
    `port` at 0). Router i's random faults are seeded with `seed + i`.
    """

    def __init__(self, count: int, **router_kwargs: Any) -> None:
        seed = router_kwargs.pop("seed", 0)
        self.routers: list[SimulatedRouter] = [
            SimulatedRouter(seed=seed + i, **router_kwargs) for i in range(count)
        ]
        self._loop: _LoopThread | None = None

    def start(self) -> SimulatedFleet:
        """Start every router; returns self."""
        if self._loop is None:
            self._loop = _LoopThread("routeros-sim-fleet")
            for router in self.routers:
                router._start_on(self._loop)
        return self

    def stop(self) -> None:
        """Stop every router and the shared loop thread. Idempotent."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        for router in self.routers:
            router.stop()
        loop.stop()

    def __enter__(self) -> SimulatedFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
