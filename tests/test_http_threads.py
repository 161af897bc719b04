"""The threads behind the blocking routes (``http_threads``): a few for the quick
routes, and threads of their own for the ones that wait on routers."""

from __future__ import annotations

import threading
from typing import Any

import anyio.to_thread
from fastapi.testclient import TestClient

from provisioner import sync
from provisioner.api import create_app
from provisioner.auth import create_token
from provisioner.db import transaction


def test_the_app_serves_its_routes_on_the_configured_threads(ctx_factory: Any) -> None:
    ctx = ctx_factory("sqlite", api_threads=3, api_slow_threads=5)
    with TestClient(create_app(ctx)) as client:
        limiter = client.portal.call(anyio.to_thread.current_default_thread_limiter)
        assert limiter.total_tokens == 3


def test_a_router_that_does_not_answer_holds_none_of_the_quick_threads(
    ctx_factory: Any, monkeypatch: Any
) -> None:
    """One quick thread, taken by nothing while ``GET /diff`` waits on a dead router:
    every other request is still answered."""
    ctx = ctx_factory("sqlite", api_threads=1)
    with transaction(ctx.factory) as s:
        token = create_token(s, role="admin")
    headers = {"Authorization": f"Bearer {token}"}
    waiting, release = threading.Event(), threading.Event()

    def dead_router(*_a: Any, **_kw: Any) -> list[Any]:
        waiting.set()
        release.wait(30)
        return []

    monkeypatch.setattr(sync, "sync_many", dead_router)
    with TestClient(create_app(ctx)) as client:
        answers: dict[str, int] = {}

        def call(name: str, path: str) -> None:
            answers[name] = client.get(path, headers=headers).status_code

        diff = threading.Thread(target=call, args=("diff", "/api/v1/diff"))
        quick = threading.Thread(target=call, args=("quick", "/api/v1/resellers"))
        try:
            diff.start()
            assert waiting.wait(10)
            quick.start()
            quick.join(10)
            assert answers.get("quick") == 200 and "diff" not in answers
        finally:
            release.set()
            diff.join(10)
            quick.join(10)
        assert answers["diff"] == 200
