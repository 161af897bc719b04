"""psycopg's wait, without a GIL hand-off before each statement of a pipeline.

In pipeline mode psycopg asks, before it sends each statement, whether the socket is
readable or writable, and its wait function asks the kernel with Python's lock (the GIL)
released. A connected socket is writable; but releasing the lock while the API's other
threads want it hands it to one of them, and the asking thread then waits for its turn:
up to the 5 ms switch interval, once per statement. Under load that was most of a
request's time in its thread (bench/README.md, "The one path, tenth pass").

``install`` puts ``wait`` in psycopg's place (``psycopg.waiting.wait``, the name psycopg
itself looks up at each wait, and the one its ``PSYCOPG_WAIT_FUNC`` setting chooses): the
first two "readable or writable?" of a wait (what a pipelined statement asks) are
answered "writable" without asking the kernel, and everything after them goes to
psycopg's own wait. Waiting for an answer (readable) is unchanged: that is where a thread
should let the others run. If the socket was not writable after all, the send is partial,
libpq keeps the rest, and a later question (psycopg asks until all is sent) goes to the
kernel, so a full socket is never spun on.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from psycopg import waiting

_psycopg_wait = waiting.wait
_RW, _W = waiting.Wait.RW, waiting.Ready.W


ASSUMED = 2  # a pipelined statement asks twice: to flush the one before, then its own


def wait(gen: Generator[Any, Any, Any], fileno: int, interval: float | None = None,
         timeout: float | None = None) -> Any:  # fmt: skip
    try:
        s = next(gen)
        for _ in range(ASSUMED):
            if s != _RW:
                break
            s = gen.send(_W)
    except StopIteration as done:
        return done.value
    return _psycopg_wait(_resumed(s, gen), fileno, interval=interval, timeout=timeout)


def _resumed(first: Any, gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    """``gen`` from a state it already yielded, for psycopg's wait to drive."""
    ready = yield first
    while True:
        try:
            s = gen.send(ready)
        except StopIteration as done:
            return done.value
        ready = yield s


def install() -> None:
    waiting.wait = wait
