"""A load generator cheap enough not to take the server's CPU: keep-alive HTTP/1.1 over
asyncio streams, requests written as bytes, responses parsed by httptools (the parser
uvicorn itself uses).

The benchmark runs on the machine it measures; its first client (httpx, one thread per
client) cost 1.6 ms of CPU per request, a sixth of what an activation cost the whole
machine. This one is meant to cost a small fraction of that, as pgbench's client does
for PostgreSQL (``bench/README.md`` prints the client's CPU beside the server's).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    token: str
    body: dict[str, Any] | None = None

    def encode(self, host: str) -> bytes:
        data = b"" if self.body is None else json.dumps(self.body).encode()
        head = (
            f"{self.method} {self.path} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {self.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        return head.encode() + data


@dataclass
class Reply:
    status: str  # the HTTP status, or the exception's class name
    ms: float
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class _Parsed:
    """httptools callbacks: one response's body and its end."""

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.done = False

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        self.done = True


async def _connection(
    host: str, port: int, streams: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    take: Callable[[], int | None], requests: Sequence[Request], replies: list[Reply | None],
) -> None:  # fmt: skip
    hostname = f"{host}:{port}"
    try:
        while (i := take()) is not None:
            t0 = time.perf_counter()
            try:
                status, body = await _one(hostname, streams, requests[i])
                replies[i] = Reply(status, (time.perf_counter() - t0) * 1000, body)
            except (OSError, httptools.HttpParserError) as exc:
                replies[i] = Reply(type(exc).__name__, (time.perf_counter() - t0) * 1000)
                streams[1].close()
                streams = await asyncio.open_connection(host, port)
    finally:
        streams[1].close()


@contextlib.contextmanager
def _no_pauses() -> Iterator[None]:
    """No garbage collection in the load generator while it times requests. The bench
    process holds its seed and every run's replies; one full collection in it took
    50-60 ms, and each request due meanwhile was charged for it: 20-30 requests at
    500/s, the whole p99 of a paced run, measured on the client rather than the server.
    A run's own garbage is freed by reference counting; the rest is collected after."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def run(
    base: str, requests: Sequence[Request], clients: int, rate: float | None = None
) -> tuple[list[Reply], float]:
    """Send every request from ``clients`` keep-alive connections, each taking the next
    request when its previous one is answered; (replies in request order, wall seconds
    from the moment every connection is open). ``rate``: paced instead (``_paced``)."""
    if rate is not None:
        return _paced(base, requests, clients, rate)
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    replies: list[Reply | None] = [None] * len(requests)
    order = iter(range(len(requests)))

    async def main() -> float:
        n = min(clients, len(requests))
        # Every connection is open before the clock starts.
        streams = await asyncio.gather(*(asyncio.open_connection(host, port) for _ in range(n)))
        t0 = time.perf_counter()
        await asyncio.gather(
            *(
                _connection(host, port, s, lambda: next(order, None), requests, replies)
                for s in streams
            )
        )
        return time.perf_counter() - t0

    with _no_pauses():
        wall = asyncio.run(main())
    return [r if r is not None else Reply("not sent", 0.0) for r in replies], wall


async def _one(
    hostname: str, streams: tuple[asyncio.StreamReader, asyncio.StreamWriter], req: Request
) -> tuple[str, bytes]:
    reader, writer = streams
    writer.write(req.encode(hostname))
    parsed = _Parsed()
    parser = httptools.HttpResponseParser(parsed)
    while not parsed.done:
        data = await reader.read(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        parser.feed_data(data)
    return str(parser.get_status_code()), b"".join(parsed.body)


def _paced(
    base: str, requests: Sequence[Request], clients: int, rate: float
) -> tuple[list[Reply], float]:
    """Requests offered at ``rate`` per second, whatever the answers: request ``j`` is
    due ``j / rate`` s after the start and goes out on whichever of the ``clients``
    connections is free (waiting for one when all are busy). Its latency is counted from
    when it was due, not from when it could be sent, so a server that falls behind is
    charged for the wait (no coordinated omission)."""
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    hostname = f"{host}:{port}"
    replies: list[Reply | None] = [None] * len(requests)

    async def main() -> float:
        n = min(clients, len(requests))
        free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        for s in await asyncio.gather(*(asyncio.open_connection(host, port) for _ in range(n))):
            free.put_nowait(s)
        t0 = time.perf_counter()
        tasks = []

        async def send(i: int, due: float) -> None:
            streams = await free.get()
            try:
                status, body = await _one(hostname, streams, requests[i])
                replies[i] = Reply(status, (time.perf_counter() - due) * 1000, body)
                free.put_nowait(streams)
            except (OSError, httptools.HttpParserError) as exc:
                replies[i] = Reply(type(exc).__name__, (time.perf_counter() - due) * 1000)
                streams[1].close()
                free.put_nowait(await asyncio.open_connection(host, port))

        for i in range(len(requests)):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(i, due)))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - t0
        while not free.empty():
            free.get_nowait()[1].close()
        return wall

    with _no_pauses():
        wall = asyncio.run(main())
    return [r if r is not None else Reply("not sent", 0.0) for r in replies], wall
