"""Threads for the blocking routes of the API and the panels: a few for the quick ones,
and threads of their own for those that wait on routers or run long (``slow``).

FastAPI runs sync routes and dependencies in anyio's thread pool, 40 threads per worker
unless told otherwise. Under load a request whose query had answered waited up to 1.5 s
for Python's lock among them (``bench/README.md``); with a few threads the requests wait
their turn in the pool's queue instead, in order. A route that talks to routers (a dead
one for seconds) or imports thousands of rows would hold those few threads that every
request shares, so it runs on the slow threads. Routes run on thread pools of this
module's (``Route``); FastAPI's own sync dependencies on anyio's, as many threads.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import anyio
import anyio.to_thread
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from provisioner import http_handler

P = ParamSpec("P")
T = TypeVar("T")

# The threads of each kind, per process: made at the first request (or by ``configure``,
# which makes them anew when their number changes).
_pools: dict[str, ThreadPoolExecutor] = {}
_sizes = {"quick": 0, "slow": 0}


def configure(threads: int, slow_threads: int) -> None:
    """In the serving event loop (the app's lifespan): the threads of both kinds.
    FastAPI's own sync dependencies (a session's opening and closing) run on anyio's
    threads, as many as the quick ones."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = threads
    for kind, size in (("quick", threads), ("slow", slow_threads)):
        if _sizes[kind] != size:
            _sizes[kind] = size
            old = _pools.pop(kind, None)
            if old is not None:
                old.shutdown(wait=False)  # its threads end once their work is done


def _pool(kind: str) -> ThreadPoolExecutor:
    pool = _pools.get(kind)
    if pool is None:
        size = _sizes[kind] or anyio.to_thread.current_default_thread_limiter().total_tokens
        pool = _pools[kind] = ThreadPoolExecutor(int(size), thread_name_prefix=f"api-{kind}")
    return pool


def _on_threads(route: Callable[P, T], kind: str) -> Callable[P, Awaitable[T]]:
    """``route`` as a coroutine that runs it on the ``kind`` threads, in this context's
    copy (as anyio's ``run_sync``, which cost a request about 20 us more in cancel scopes
    and its limiter); FastAPI reads the wrapped signature. A cancelled request still waits
    for its route to end: the route's transaction holds a connection until then."""

    @functools.wraps(route)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        call = functools.partial(contextvars.copy_context().run, route, *args, **kwargs)
        done = asyncio.get_running_loop().run_in_executor(_pool(kind), call)
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            await asyncio.wait([done])
            raise

    return run


def slow(route: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """A sync route run on the slow threads."""
    return _on_threads(route, "slow")


def quick(route: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """A sync route run on the quick threads."""
    return _on_threads(route, "quick")


class Route(APIRoute):
    """Every route of the API and the panels: a sync endpoint runs on a thread, as FastAPI
    runs it, but FastAPI is handed a coroutine. FastAPI validates a sync endpoint's answer
    against its response model on a second trip to the thread pool (two hops a request,
    each a wake-up of a thread and a wait for the GIL); a coroutine's answer is validated
    in the event loop, where pydantic takes microseconds."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = quick(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, planned once for this route (``http_handler``)."""
        return http_handler.lean(http_handler.effective(self), super().get_route_handler())
