"""Jobs started together: each on its own thread, released at once by a barrier."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def at_once(*jobs: Callable[[], Any], timeout: float | None = None) -> None:
    """Run ``jobs`` on threads released together; fail with every job's exception."""
    start = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], Any]) -> None:
        try:
            start.wait()
            job()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a job did not end in time"
    assert errors == []
