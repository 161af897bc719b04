"""Threads for the blocking routes of the API and the panels: a few for the quick ones,
and threads of their own for those that wait on routers or run long (``slow``).

Sync routes and dependencies run in anyio's thread pool, 40 threads per worker unless
told otherwise. Under load a request whose query had answered waited up to 1.5 s for
Python's lock among them (``bench/README.md``); with a few threads the requests wait
their turn in anyio's queue instead, in order. A route that talks to routers (a dead one
for seconds) or imports thousands of rows would hold those few threads that every
request shares, so it runs on the slow threads.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import anyio
import anyio.to_thread
from fastapi.routing import APIRoute

P = ParamSpec("P")
T = TypeVar("T")

# Per event loop, as anyio's own default limiter (a test process runs many loops).
_slow: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def configure(threads: int, slow_threads: int) -> None:
    """In the serving event loop (the app's lifespan): the threads of both kinds."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = threads
    _slow[asyncio.get_running_loop()] = anyio.CapacityLimiter(slow_threads)


def _slow_limiter() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _slow.get(loop)
    if limiter is None:  # an app served without its lifespan
        limiter = _slow[loop] = anyio.CapacityLimiter(
            anyio.to_thread.current_default_thread_limiter().total_tokens
        )
    return limiter


def _on_threads(
    route: Callable[P, T], limiter: Callable[[], anyio.CapacityLimiter | None]
) -> Callable[P, Awaitable[T]]:
    """``route`` as a coroutine that runs it on ``limiter()``'s threads (None: anyio's
    default, as FastAPI's own); FastAPI reads the wrapped signature."""

    @functools.wraps(route)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        call = functools.partial(route, *args, **kwargs)
        return await anyio.to_thread.run_sync(call, limiter=limiter())

    return run


def slow(route: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """A sync route run on the slow threads."""
    return _on_threads(route, _slow_limiter)


def quick(route: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """A sync route run on the quick threads."""
    return _on_threads(route, lambda: None)


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
