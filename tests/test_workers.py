"""``serve``'s worker processes: the parent deals each connection to the worker holding
the fewest, and replaces a worker that dies (``provisioner.api.workers``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ask(conn: socket.socket) -> int:
    """The pid of the worker serving this keep-alive connection."""
    conn.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = conn.recv(4096)
        assert chunk, "the server closed the connection"
        data += chunk
    return int(data.split(b"\r\n\r\n", 1)[1])


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 1 << 30


def _connect(port: int, n: int) -> list[socket.socket]:
    """``n`` connections, all open before any request is sent (a burst of clients)."""
    return [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(n)]


@pytest.fixture
def server() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.pid_server", str(port), "2"], cwd=ROOT, env=env
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                _ask(c)
            break
        except OSError:
            assert proc.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not answer"
            time.sleep(0.2)
    try:
        yield port, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_burst_of_keep_alive_clients_is_spread_evenly(
    server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    """32 clients connecting at once: 16 and 16 (uvicorn's own workers left 31 of 32 on
    one); the worker holding fewer takes the next; a worker that dies is replaced, and
    the new one takes what comes while it holds the fewest."""
    port, proc = server
    conns = _connect(port, 32)
    try:
        pids = Counter(_ask(c) for c in conns)
        assert sorted(pids.values()) == [16, 16], pids
        first = _ask(conns[0])
        mine = [c for c in conns if _ask(c) == first][:6]
        for c in mine:
            c.close()
        time.sleep(0.5)  # the worker counts them closed
        more = _connect(port, 6)
        conns += more
        assert {_ask(c) for c in more} == {first}
        # One worker killed: the parent starts another, which takes the next connections.
        other = next(p for p in pids if p != first)
        os.kill(other, signal.SIGKILL)
        deadline = time.monotonic() + 30
        fresh = set()
        while time.monotonic() < deadline:
            # One dealt to the killed worker before the parent saw it die is reset, as
            # its open ones were: a client connects again.
            with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
                try:
                    fresh.add(_ask(c))
                except ConnectionResetError:
                    continue
            if fresh - set(pids):
                break
            time.sleep(0.2)
        assert fresh - set(pids), "no new worker answered"
        assert proc.poll() is None
    finally:
        for c in conns:
            c.close()
